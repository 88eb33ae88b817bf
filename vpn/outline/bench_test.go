package outline

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"testing"
)

// sink reads an 8-byte length and then that many bytes, and answers with
// the count: the client knows every byte went through (ss-server does not
// relay a half close, so EOF cannot mark the end). A connection that starts
// with "ping" gets "pong" back at once (the connections/s path).
func sink(b testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var hdr [8]byte
				if _, err := io.ReadFull(c, hdr[:4]); err != nil {
					return
				}
				if string(hdr[:4]) == "ping" {
					c.Write([]byte("pong"))
					return
				}
				if _, err := io.ReadFull(c, hdr[4:]); err != nil {
					return
				}
				n, _ := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint64(hdr[:])))
				c.Write(binary.BigEndian.AppendUint64(nil, uint64(n)))
			}()
		}
	}()
	return ln.Addr().String()
}

// benchServers starts our server, in a process of its own, with `keys`
// keys (the client's key last) and, when installed, libev's ss-server, both
// for method and password "pw".
func benchServers(b *testing.B, method string, keys int) map[string]benchServer {
	out := map[string]benchServer{"usipipo": startServerProcess(b, method, keys)}
	if _, err := exec.LookPath("ss-server"); err == nil {
		port := freePort(b)
		cmd := startLibev(b, "ss-server", "-s", "127.0.0.1", "-p", strconv.Itoa(port), "-k", "pw", "-m", method, "-t", "30")
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		waitListening(b, addr)
		out["ss-server"] = benchServer{addr: addr, pid: cmd.Process.Pid}
	}
	return out
}
