package ops

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNodeNotifiesSystemd runs the release binary as systemd would run it
// under Type=notify with WatchdogSec=: a unixgram NOTIFY_SOCKET and
// WATCHDOG_USEC. It must send READY=1 once serving, WATCHDOG=1 at least
// every interval, and STOPPING=1 on SIGTERM, then exit 0.
func TestNodeNotifiesSystemd(t *testing.T) {
	bin := filepath.Join(release(t), "usipipo-linux-"+runtime.GOARCH)
	if b, err := os.ReadFile(bin); err != nil || !bytes.Contains(b, []byte("NOTIFY_SOCKET")) {
		t.Skip("the node does not link app/sdnotify yet (apply the sd_notify wiring in app/node)")
	}
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const watchdog = 600 * time.Millisecond
	cmd := exec.Command(bin, "serve", "--data", filepath.Join(t.TempDir(), "data"), "--http", "127.0.0.1:0",
		"--wg-listen", "127.0.0.1:0", "--wg-mode", "netstack", "--ss-listen", "127.0.0.1:0", "--mtproto-listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=600000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()

	next := func(within time.Duration) string {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(within))
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no notification within %v: %v", within, err)
		}
		return string(buf[:n])
	}
	// READY=1 once the API serves; watchdog pings may come before it.
	for msg := next(60 * time.Second); !strings.Contains(msg, "READY=1\n"); msg = next(60 * time.Second) {
		if msg != "WATCHDOG=1\n" && !strings.HasPrefix(msg, "STATUS=") {
			t.Fatalf("before READY: %q", msg)
		}
	}
	// Then pings, never further apart than the interval.
	pings := 0
	for start := time.Now(); time.Since(start) < 3*watchdog; {
		if msg := next(watchdog); msg == "WATCHDOG=1\n" {
			pings++
		}
	}
	if pings < 3 {
		t.Fatalf("%d watchdog pings in %v, want one every %v", pings, 3*watchdog, watchdog/2)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for msg := next(10 * time.Second); !strings.Contains(msg, "STOPPING=1\n"); msg = next(10 * time.Second) {
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("node exit after SIGTERM: %v", err)
		}
		exited <- nil
	case <-time.After(30 * time.Second):
		t.Fatal("node did not exit within 30 s of SIGTERM")
	}
}
