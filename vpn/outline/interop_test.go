package outline

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/store/model"
)

// These tests check the server against shadowsocks-libev, an implementation
// we did not write (Debian package shadowsocks-libev).

func needLibev(t testing.TB, bins ...string) {
	t.Helper()
	for _, b := range append(bins, "ss-local") {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed (apt-get install shadowsocks-libev curl)", b)
		}
	}
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitListening polls until addr accepts TCP connections.
func waitListening(t testing.TB, addr string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
	}
	t.Fatalf("%s never listened", addr)
}

// startLibev runs a libev binary (ss-local, ss-server) until the test ends.
func startLibev(t testing.TB, bin string, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", bin, out.String())
		}
	})
	return cmd
}

// ssLocal starts ss-local for the server at addr and returns its SOCKS address.
func ssLocal(t testing.TB, server, method, password string, udp bool) string {
	host, port, _ := net.SplitHostPort(server)
	local := freePort(t)
	args := []string{"-s", host, "-p", port, "-b", "127.0.0.1", "-l", fmt.Sprint(local), "-k", password, "-m", method, "-t", "10"}
	if udp {
		args = append(args, "-u")
	}
	startLibev(t, "ss-local", args...)
	addr := fmt.Sprintf("127.0.0.1:%d", local)
	waitListening(t, addr)
	return addr
}

// curl fetches url through the SOCKS proxy, letting the proxy resolve names.
func curl(ctx context.Context, socks, url string, maxTime int) (string, error) {
	out, err := exec.CommandContext(ctx, "curl", "-sS", "--max-time", fmt.Sprint(maxTime),
		"--socks5-hostname", socks, url).CombinedOutput()
	return string(out), err
}

func pageServer(t testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" { // never ends: a relay that is cut shows it
			for r.Context().Err() == nil {
				w.Write([]byte(strings.Repeat("x", 1000)))
				w.(http.Flusher).Flush()
				time.Sleep(20 * time.Millisecond)
			}
			return
		}
		io.WriteString(w, "hello from the loopback page "+r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestLibevClientEachCipher(t *testing.T) {
	needLibev(t, "curl")
	s := newTestServer(t, Options{})
	page := pageServer(t)
	var creds []plane.Credential
	for i, m := range Methods() {
		creds = append(creds, cred(t, fmt.Sprint("k", i), m, fmt.Sprint("password-", i), model.Limits{}))
	}
	s.Apply(context.Background(), creds)
	port := page.Listener.Addr().(*net.TCPAddr).Port
	for i, m := range Methods() {
		t.Run(m, func(t *testing.T) {
			socks := ssLocal(t, s.addr, m, fmt.Sprint("password-", i), false)
			// By IP and by name: a name reaches the server as a domain target.
			for _, host := range []string{"127.0.0.1", "localhost"} {
				url := fmt.Sprintf("http://%s:%d/%s", host, port, m)
				out, err := curl(context.Background(), socks, url, 10)
				if err != nil || out != "hello from the loopback page /"+m {
					t.Fatalf("%s: %q %v", url, out, err)
				}
			}
		})
	}
}

func TestLibevWrongPasswordAndRevocation(t *testing.T) {
	needLibev(t, "curl")
	s := newTestServer(t, Options{HandshakeTimeout: 2 * time.Second})
	page := pageServer(t)
	s.Apply(context.Background(), []plane.Credential{cred(t, "k", DefaultMethod, "right", model.Limits{})})
	wrong := ssLocal(t, s.addr, DefaultMethod, "wrong", false)
	if out, err := curl(context.Background(), wrong, page.URL+"/", 4); err == nil {
		t.Fatalf("wrong password fetched %q", out)
	}
	if s.metric(`usipipo_outline_handshake_failures_total{reason="auth"}`) == 0 {
		t.Fatal("no auth failure counted")
	}

	right := ssLocal(t, s.addr, DefaultMethod, "right", false)
	if _, err := curl(context.Background(), right, page.URL+"/", 10); err != nil {
		t.Fatal(err)
	}
	done := make(chan time.Time, 1)
	go func() { // a download that never ends by itself
		curl(context.Background(), right, page.URL+"/stream", 30)
		done <- time.Now()
	}()
	time.Sleep(500 * time.Millisecond)
	removed := time.Now()
	s.Apply(context.Background(), nil)
	select {
	case at := <-done:
		if el := at.Sub(removed); el > 2*time.Second {
			t.Fatalf("stream ended %v after removal", el)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a removed key's download still runs after 2 s")
	}
	if out, err := curl(context.Background(), right, page.URL+"/", 4); err == nil {
		t.Fatalf("removed key fetched %q", out)
	}
}

// recorder is a TCP relay in front of the server that keeps the first bytes
// the client sent, as an observer on the path could.
type recorder struct {
	mu    sync.Mutex
	first []byte
}

func (r *recorder) run(t testing.TB, upstream string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", upstream)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(c, up)
				buf := make([]byte, 65536)
				n, _ := c.Read(buf)
				r.mu.Lock()
				if r.first == nil {
					r.first = append([]byte(nil), buf[:n]...)
				}
				r.mu.Unlock()
				up.Write(buf[:n])
				io.Copy(up, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestLibevReplayIsRefusedAndDrained(t *testing.T) {
	needLibev(t, "curl")
	s := newTestServer(t, Options{HandshakeTimeout: 1500 * time.Millisecond})
	page := pageServer(t)
	s.Apply(context.Background(), []plane.Credential{cred(t, "k", "aes-256-gcm", "pw", model.Limits{})})
	var rec recorder
	socks := ssLocal(t, rec.run(t, s.addr), "aes-256-gcm", "pw", false)
	if _, err := curl(context.Background(), socks, page.URL+"/", 10); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	first := rec.first
	rec.mu.Unlock()
	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write(first)
	expectDrainedConn(t, conn, 1500*time.Millisecond)
	if s.metric(`usipipo_outline_handshake_failures_total{reason="replay"}`) != 1 {
		t.Fatal("replay not counted")
	}
}

func TestLibevUDPAssociate(t *testing.T) {
	needLibev(t)
	s := newTestServer(t, Options{})
	echo := udpEcho(t)
	s.Apply(context.Background(), []plane.Credential{cred(t, "k", DefaultMethod, "pw", model.Limits{})})
	socks := ssLocal(t, s.addr, DefaultMethod, "pw", true)
	ctrl, relay := socksUDPAssociate(t, socks)
	defer ctrl.Close()
	conn, err := net.Dial("udp", relay)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hdr := append([]byte{0, 0, 0}, AppendAddr(nil, Addr{IP: mustAP(echo)})...)
	buf := make([]byte, 2048)
	for i := range 3 {
		msg := fmt.Sprint("datagram ", i)
		conn.Write(append(hdr, msg...))
		conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no reply to %q: %v", msg, err)
		}
		if a, k, err := ParseAddr(buf[3:n]); err != nil || a.IP != mustAP(echo) || string(buf[3+k:n]) != msg {
			t.Fatalf("reply %q from %v %v", buf[:n], a, err)
		}
	}
	snap, _ := s.Counters(context.Background())
	if snap.Counters[0].Rx == 0 || snap.Counters[0].Tx == 0 {
		t.Fatalf("udp not counted: %+v", snap.Counters[0])
	}
}

// socksUDPAssociate does the SOCKS5 handshake and UDP ASSOCIATE and returns
// the control connection (the association lives while it is open) and the
// relay address.
func socksUDPAssociate(t *testing.T, socks string) (net.Conn, string) {
	c, err := net.Dial("tcp", socks)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte{5, 1, 0})
	r := make([]byte, 2)
	if _, err := io.ReadFull(c, r); err != nil || r[1] != 0 {
		t.Fatalf("socks greeting %v %v", r, err)
	}
	c.Write([]byte{5, 3, 0, 1, 0, 0, 0, 0, 0, 0})
	rep := make([]byte, 10)
	if _, err := io.ReadFull(c, rep); err != nil || rep[1] != 0 || rep[3] != 1 {
		t.Fatalf("udp associate reply %v %v", rep, err)
	}
	c.SetDeadline(time.Time{})
	ip := net.IP(rep[4:8])
	if ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return c, net.JoinHostPort(ip.String(), fmt.Sprint(binary.BigEndian.Uint16(rep[8:10])))
}
