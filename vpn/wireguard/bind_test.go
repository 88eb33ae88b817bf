package wireguard

import (
	"bytes"
	"net"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
)

// TestBindSendCoalesced sends runs of equal datagrams (segmentation offload
// where the kernel has it) and checks that each arrives whole and in order.
func TestBindSendCoalesced(t *testing.T) {
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	sink.SetReadBuffer(4 << 20) // all 150 wait in it
	src, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	b, err := newSocketBind(src)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("segmentation offload: %v", b.gso.Load())
	var bufs [][]byte
	sizes := []int{}
	for i := range 150 { // more than one message's segments, a short one mid-run, one over 1 KiB
		n := 1200
		switch i {
		case 70:
			n = 300
		case 149:
			n = 17
		}
		bufs = append(bufs, bytes.Repeat([]byte{byte(i)}, n))
		sizes = append(sizes, n)
	}
	ep, err := b.ParseEndpoint(sink.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Send(bufs, ep); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	for i, n := range sizes {
		sink.SetReadDeadline(time.Now().Add(2 * time.Second))
		got, err := sink.Read(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if got != n || buf[0] != byte(i) || buf[got-1] != byte(i) {
			t.Fatalf("datagram %d: %d bytes of %d, want %d of %d", i, got, buf[0], n, i)
		}
	}
}

// TestBindReceiveCoalesced sends runs of datagrams with segmentation
// offload to a bind with receive offload (loopback hands the coalesced
// message over whole) and checks that the device gets each datagram whole,
// in order, from its sender.
func TestBindReceiveCoalesced(t *testing.T) {
	lo := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	rc, err := net.ListenUDP("udp", lo)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	sc, err := net.ListenUDP("udp", lo)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	recv, err := newSocketBind(rc)
	if err != nil {
		t.Fatal(err)
	}
	send, err := newSocketBind(sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("receive offload: %v, segmentation offload: %v", recv.gro, send.gso.Load())
	fns, _, err := recv.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	var want [][]byte
	for i := range 300 {
		n := 1200
		if i%100 == 99 {
			n = 40 + i%7 // a short one ends each run
		}
		want = append(want, bytes.Repeat([]byte{byte(i)}, n))
	}
	ep, _ := send.ParseEndpoint(rc.LocalAddr().String())
	for i := 0; i < len(want); i += 100 {
		if err := send.Send(want[i:i+100], ep); err != nil {
			t.Fatal(err)
		}
	}
	bufs := make([][]byte, bindBatch)
	for i := range bufs {
		bufs[i] = make([]byte, 65535)
	}
	sizes := make([]int, bindBatch)
	eps := make([]conn.Endpoint, bindBatch)
	got, reads := 0, 0
	rc.SetReadDeadline(time.Now().Add(3 * time.Second))
	for got < len(want) {
		n, err := fns[0](bufs, sizes, eps)
		if err != nil {
			t.Fatalf("after %d datagrams: %v", got, err)
		}
		reads++
		for i := range n {
			if !bytes.Equal(bufs[i][:sizes[i]], want[got]) || eps[i].DstToString() != sc.LocalAddr().String() {
				t.Fatalf("datagram %d: %d bytes of %d from %s", got, sizes[i], bufs[i][0], eps[i].DstToString())
			}
			got++
		}
	}
	t.Logf("%d datagrams in %d reads", got, reads)
}
