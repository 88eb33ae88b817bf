package upgrade_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gotd/td/mtproxy"
	"github.com/gotd/td/mtproxy/obfuscated2"
	"github.com/gotd/td/mtproxy/obfuscator"

	"github.com/usipipo/usipipo/app/admin"
	"github.com/usipipo/usipipo/app/node"
)

// build builds the usipipo binary with version stamped, into dir.
func build(t *testing.T, dir, version string) string {
	t.Helper()
	out := filepath.Join(dir, "usipipo-"+version)
	cmd := exec.Command("go", "build", "-o", out, "-ldflags", "-X main.version="+version, "../..")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// freePort picks a port free on 127.0.0.1 for both TCP and UDP.
func freePort(t *testing.T) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		ln.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// logFile collects the output of a node and its successors. It is a file,
// not a pipe: a successor inherits it, and exec's Wait would wait for a
// pipe's last writer.
type logFile struct{ f *os.File }

func newLogFile(t *testing.T) *logFile {
	f, err := os.Create(filepath.Join(t.TempDir(), "node.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &logFile{f}
}

func (l *logFile) String() string {
	b, _ := os.ReadFile(l.f.Name())
	return string(b)
}

// testNode is a real node process on loopback sockets.
type testNode struct {
	t       *testing.T
	bin     string
	data    string
	http    string
	ss      int
	mt      int
	wg      int
	cmd     *exec.Cmd
	logs    *logFile
	exited  chan struct{}
	waitErr error
}

func startNode(t *testing.T, bin string, dcAddr string, env ...string) *testNode {
	t.Helper()
	n := &testNode{t: t, bin: bin, data: filepath.Join(t.TempDir(), "data"), logs: newLogFile(t), exited: make(chan struct{}),
		ss: freePort(t), mt: freePort(t), wg: freePort(t)}
	n.http = "127.0.0.1:" + strconv.Itoa(freePort(t))
	n.cmd = exec.Command(bin, "serve", "--data", n.data, "--http", n.http,
		"--wg-listen", fmt.Sprintf("127.0.0.1:%d", n.wg), "--wg-mode", "netstack",
		"--ss-listen", fmt.Sprintf("127.0.0.1:%d", n.ss), "--mtproto-listen", fmt.Sprintf("127.0.0.1:%d", n.mt),
		"--egress-allow", "127.0.0.0/8", "--mtproto-dc", "2="+dcAddr, "--public-host", "127.0.0.1", "--mtproto-domain", "cloak.example", "--log-level", "debug")
	n.run(env)
	return n
}

// run starts n.cmd with env added and waits until the node serves; the
// test's end stops it and whoever took over from it.
func (n *testNode) run(env []string) {
	t := n.t
	t.Helper()
	n.cmd.Env = append(append(os.Environ(), "USIPIPO_BACKUP_PASSPHRASE=upgrade test passphrase"), env...)
	n.cmd.Stdout, n.cmd.Stderr = n.logs.f, n.logs.f
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		n.waitErr = n.cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() {
		n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.exited:
		case <-time.After(30 * time.Second):
			n.cmd.Process.Kill()
			<-n.exited
		}
		// The successor is not our child: stop whoever serves now.
		if st, err := n.status(); err == nil && st.PID != n.cmd.Process.Pid {
			syscall.Kill(st.PID, syscall.SIGTERM)
			for i := 0; i < 300 && syscall.Kill(st.PID, 0) == nil; i++ {
				time.Sleep(100 * time.Millisecond)
			}
		}
		if t.Failed() {
			t.Logf("node output:\n%s", n.logs.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := n.status(); err == nil {
			return
		}
		select {
		case <-n.exited:
			t.Fatalf("node exited: %v\n%s", n.waitErr, n.logs.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("node not serving within 60 s\n%s", n.logs.String())
		}
	}
}

func (n *testNode) client() *admin.Client {
	return admin.NewClient(filepath.Join(n.data, "admin.sock"))
}

func (n *testNode) status() (node.Status, error) {
	var st node.Status
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := n.client().Call(ctx, "node.status", nil, &st)
	return st, err
}

func (n *testNode) call(method string, params, out any) {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.client().Call(ctx, method, params, out); err != nil {
		n.t.Fatalf("%s: %v", method, err)
	}
}

// cli runs `bin args… --data DATA` and returns its output and error.
func (n *testNode) cli(bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, append(args, "--data", n.data)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// credentials makes a user with an Outline key and an MTProto secret and
// returns the ss:// URL and the tg:// link.
func (n *testNode) credentials() (ss, tg string) {
	var u struct {
		ID string `json:"id"`
	}
	n.call("user.add", admin.UserAdd{TelegramID: 4242}, &u)
	var key, px struct {
		Config struct {
			Text string `json:"text"`
			Link string `json:"link"`
		} `json:"config"`
	}
	n.call("key.add", admin.KeyAdd{UserID: u.ID, Type: "outline"}, &key)
	n.call("proxy.add", admin.ProxyAdd{UserID: u.ID}, &px)
	return key.Config.Text, px.Config.Link + " " + px.Config.Text
}

// echoServer echoes every TCP connection.
func echoServer(t *testing.T) string {
	t.Helper()
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
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

// echoDC is a Telegram data centre stand-in: obfuscated2 (no secret), echo.
func echoDC(t *testing.T) string {
	t.Helper()
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
				rw, _, err := obfuscated2.Accept(c, nil)
				if err != nil {
					return
				}
				io.Copy(rw, rw)
			}()
		}
	}()
	return ln.Addr().String()
}

var secretRE = regexp.MustCompile(`secret=(ee[0-9a-f]+)`)

// dialMTProto connects through the proxy to DC 2 with gotd's MTProxy client.
func dialMTProto(t *testing.T, port int, link string) net.Conn {
	t.Helper()
	m := secretRE.FindStringSubmatch(link)
	if m == nil {
		t.Fatalf("no FakeTLS secret in %q", link)
	}
	raw, err := hex.DecodeString(m[1])
	if err != nil || len(raw) < 18 {
		t.Fatalf("secret %q", m[1])
	}
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// The padded intermediate ("dd") form of the secret: the link's FakeTLS
	// domain is the public host, which the proxy need not front for.
	oc := obfuscator.Obfuscated2(rand.Reader, c)
	sec := mtproxy.Secret{Secret: raw[1:17], Tag: 0xdd, Type: mtproxy.Secured}
	if err := oc.Handshake([4]byte{0xdd, 0xdd, 0xdd, 0xdd}, 2, sec); err != nil {
		t.Fatalf("mtproto handshake: %v", err)
	}
	c.SetDeadline(time.Time{})
	return oc
}

// ssLocal runs ss-local for the ss:// URL and returns its SOCKS5 address.
func ssLocal(t *testing.T, url string) string {
	t.Helper()
	bin, err := exec.LookPath("ss-local")
	if err != nil {
		t.Skip("ss-local not found: apt-get install shadowsocks-libev")
	}
	rest := strings.TrimPrefix(url, "ss://")
	user, hostport, ok := strings.Cut(rest, "@")
	if !ok {
		t.Fatalf("access key %q", url)
	}
	hostport, _, _ = strings.Cut(hostport, "/")
	dec, err := base64.RawURLEncoding.DecodeString(user)
	if err != nil {
		t.Fatalf("access key userinfo: %v", err)
	}
	method, password, _ := strings.Cut(string(dec), ":")
	host, port, _ := net.SplitHostPort(hostport)
	local := freePort(t)
	cmd := exec.Command(bin, "-s", host, "-p", port, "-k", password, "-m", method, "-b", "127.0.0.1", "-l", strconv.Itoa(local))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", local)
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("ss-local did not listen")
	return ""
}

// socks5 opens a stream to target through a SOCKS5 proxy (no auth).
func socks5(t *testing.T, proxy, target string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxy, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	host, portS, _ := net.SplitHostPort(target)
	port, _ := strconv.Atoi(portS)
	ip := net.ParseIP(host).To4()
	req := []byte{5, 1, 0}
	req = append(req, 5, 1, 0, 1)
	req = append(req, ip...)
	req = append(req, byte(port>>8), byte(port))
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp := make([]byte, 2+10)
	if _, err := io.ReadFull(br, resp); err != nil || resp[0] != 5 || resp[1] != 0 || resp[3] != 0 {
		t.Fatalf("socks5 connect: %v %x", err, resp)
	}
	c.SetDeadline(time.Time{})
	return c
}

// roundTrip checks that msg comes back through an echoing stream.
func roundTrip(c net.Conn, msg []byte) error {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() { _, err := c.Write(msg); errc <- err }()
	back := make([]byte, len(msg))
	if _, err := io.ReadFull(c, back); err != nil {
		return err
	}
	if err := <-errc; err != nil {
		return err
	}
	if !bytes.Equal(back, msg) {
		return fmt.Errorf("echo differs")
	}
	return nil
}

// notifySocket is a service manager's NOTIFY_SOCKET: it records every
// datagram in order.
type notifySocket struct {
	path string
	mu   sync.Mutex
	msgs []string
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	ns := &notifySocket{path: filepath.Join(t.TempDir(), "notify")}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: ns.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			ns.mu.Lock()
			ns.msgs = append(ns.msgs, string(buf[:n]))
			ns.mu.Unlock()
		}
	}()
	return ns
}

// index is the position of the first message at or after from that
// contains s, or -1.
func (ns *notifySocket) index(from int, s string) int {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	for i := max(from, 0); i < len(ns.msgs); i++ {
		if strings.Contains(ns.msgs[i], s) {
			return i
		}
	}
	return -1
}

func (ns *notifySocket) all() []string {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return slices.Clone(ns.msgs)
}
