package netstack

import (
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

func packets(n int, size int) stack.PacketBufferList {
	var l stack.PacketBufferList
	for i := range n {
		b := make([]byte, size)
		b[0] = byte(i)
		l.PushBack(stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(b)}))
	}
	return l
}

// TestEndpointBlocksAndBatches: a full queue parks the writer instead of
// dropping, a read takes a batch in order, and Close releases everyone.
func TestEndpointBlocksAndBatches(t *testing.T) {
	e := NewEndpoint(4, 1500)
	wrote := make(chan int)
	go func() {
		l := packets(6, 100)
		n, _ := e.WritePackets(l)
		l.DecRef()
		wrote <- n
	}()
	select {
	case n := <-wrote:
		t.Fatalf("WritePackets returned %d with a queue of 4", n)
	case <-time.After(100 * time.Millisecond):
	}
	bufs, sizes := make([][]byte, 8), make([]int, 8)
	for i := range bufs {
		bufs[i] = make([]byte, 2000)
	}
	got := 0
	for got < 6 {
		n, ok := e.ReadBatch(bufs, sizes, 16)
		if !ok {
			t.Fatal("closed")
		}
		for i := range n {
			if sizes[i] != 100 || bufs[i][16] != byte(got+i) {
				t.Fatalf("packet %d: size %d first byte %d", got+i, sizes[i], bufs[i][16])
			}
		}
		got += n
	}
	if n := <-wrote; n != 6 {
		t.Fatalf("wrote %d", n)
	}

	// A packet larger than the buffer is dropped, not truncated.
	l := packets(1, 3000)
	e.WritePackets(l)
	l.DecRef()
	l = packets(1, 10)
	e.WritePackets(l)
	l.DecRef()
	if n, _ := e.ReadBatch(bufs, sizes, 0); n != 1 || sizes[0] != 10 {
		t.Fatalf("oversized packet: n=%d size=%d", n, sizes[0])
	}

	done := make(chan bool)
	go func() {
		_, ok := e.ReadBatch(bufs, sizes, 0)
		done <- ok
	}()
	time.Sleep(20 * time.Millisecond)
	e.Close()
	if ok := <-done; ok {
		t.Fatal("ReadBatch after Close reported data")
	}
	l = packets(1, 10)
	defer l.DecRef()
	if _, err := e.WritePackets(l); err == nil {
		t.Fatal("WritePackets after Close succeeded")
	}
}
