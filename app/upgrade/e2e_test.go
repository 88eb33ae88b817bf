package upgrade_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/admin"
)

// poller asks GET /healthz continuously and counts failures.
type poller struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	firstErr   error
	stop       context.CancelFunc
	done       chan struct{}
}

func poll(url string) *poller {
	ctx, cancel := context.WithCancel(context.Background())
	p := &poller{stop: cancel, done: make(chan struct{})}
	cl := &http.Client{Timeout: 30 * time.Second}
	go func() {
		defer close(p.done)
		for ctx.Err() == nil {
			resp, err := cl.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			if err != nil {
				p.failed.Add(1)
				p.mu.Lock()
				if p.firstErr == nil {
					p.firstErr = err
				}
				p.mu.Unlock()
			} else {
				p.ok.Add(1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return p
}

func (p *poller) finish(t *testing.T) {
	t.Helper()
	p.stop()
	<-p.done
	if n := p.failed.Load(); n > 0 {
		t.Errorf("%d of %d API requests failed during the upgrade; first: %v", n, n+p.ok.Load(), p.firstErr)
	}
	if p.ok.Load() < 10 {
		t.Errorf("only %d API requests answered", p.ok.Load())
	}
}

// TestUpgradeKeepsConnections upgrades a serving node to a second build
// while a Shadowsocks stream (ss-local) and an MTProto stream (gotd's
// FakeTLS client to a local DC) stay open and the API is polled: nothing
// fails, the old streams keep working through the old process, new ones
// reach the new process, and the old process exits once they end, handing
// their usage over.
func TestUpgradeKeepsConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	v1, v2 := build(t, dir, "v1.0.0-test"), build(t, dir, "v2.0.0-test")
	echo, dc := echoServer(t), echoDC(t)
	n := startNode(t, v1, dc)
	ssURL, tg := n.credentials()
	socks := ssLocal(t, ssURL)
	time.Sleep(300 * time.Millisecond) // the reconcile loop installs the new credentials
	ssConn := socks5(t, socks, echo)
	mtConn := dialMTProto(t, n.mt, tg)
	for _, c := range []struct {
		name string
		err  error
	}{{"shadowsocks", roundTrip(ssConn, []byte("before ss"))}, {"mtproto", roundTrip(mtConn, []byte("before mtproto"))}} {
		if c.err != nil {
			t.Fatalf("%s before the upgrade: %v", c.name, c.err)
		}
	}
	before, err := n.status()
	if err != nil {
		t.Fatal(err)
	}

	p := poll("http://" + n.http + "/healthz")
	// The streams carry traffic all through the upgrade.
	var streamErr atomic.Pointer[error]
	streamCtx, stopStreams := context.WithCancel(context.Background())
	var streams sync.WaitGroup
	for name, conn := range map[string]net.Conn{"shadowsocks": ssConn, "mtproto": mtConn} {
		streams.Go(func() {
			for i := 0; streamCtx.Err() == nil; i++ {
				if err := roundTrip(conn, []byte(fmt.Sprintf("%s %d", name, i))); err != nil {
					err = fmt.Errorf("%s stream: %w", name, err)
					streamErr.Store(&err)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	out, err := n.cli(v2, "upgrade", "--binary", v2, "--timeout", "60s", "--drain", "60s")
	if err != nil {
		t.Fatalf("usipipo upgrade: %v\n%s", err, out)
	}
	if !strings.Contains(out, "upgraded") {
		t.Fatalf("upgrade output: %s", out)
	}
	after, err := n.status()
	if err != nil {
		t.Fatal(err)
	}
	if after.PID == before.PID || after.Version != "v2.0.0-test" || after.Upgrade == nil || after.Upgrade.OldPID != before.PID {
		t.Fatalf("after the upgrade: %+v (before: pid %d)", after, before.PID)
	}
	time.Sleep(time.Second) // traffic after the hand-over
	stopStreams()
	streams.Wait()
	if e := streamErr.Load(); e != nil {
		t.Fatal(*e)
	}
	// New connections reach the new process.
	if err := roundTrip(socks5(t, socks, echo), []byte("new ss")); err != nil {
		t.Fatalf("new shadowsocks stream: %v", err)
	}
	if err := roundTrip(dialMTProto(t, n.mt, tg), []byte("new mtproto")); err != nil {
		t.Fatalf("new mtproto stream: %v", err)
	}
	p.finish(t)
	// The old process exits once its streams end, and hands their usage on.
	ssConn.Close()
	mtConn.Close()
	select {
	case <-n.exited:
		if n.waitErr != nil {
			t.Fatalf("old process: %v", n.waitErr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the old process did not exit after its connections ended")
	}
	logs := n.logs.String()
	if testing.Verbose() {
		for _, l := range strings.Split(logs, "\n") {
			if strings.Contains(l, `"upgrade`) || strings.Contains(l, "api_ready") || strings.Contains(l, `"level":"ERROR"`) {
				t.Log(l)
			}
		}
	}
	for _, want := range []string{"upgrade_released", "upgrade_handed_over", "upgrade_drained", "upgrade_usage_handed", "upgrade_usage_committed", "upgrade_took_over"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	var user admin.Page[map[string]any]
	n.call("user.list", nil, &user)
	if len(user.Items) != 1 {
		t.Fatalf("users after the upgrade: %+v", user.Items)
	}
}

// TestUpgradeFailureKeepsServing: a new binary that exits at once, and one
// that takes the store and then dies, both leave the old process serving
// (the second after it reopened the store) and make `usipipo upgrade` fail
// with the reason, while the API never fails.
func TestUpgradeFailureKeepsServing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	v1 := build(t, dir, "v1.0.0-test")
	n := startNode(t, v1, echoDC(t))
	before, err := n.status()
	if err != nil {
		t.Fatal(err)
	}
	p := poll("http://" + n.http + "/healthz")

	exits := filepath.Join(dir, "exits")
	if err := os.WriteFile(exits, []byte("#!/bin/sh\necho broken >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Speaks the protocol far enough to make the old process release the
	// store, then dies.
	dies := filepath.Join(dir, "dies")
	script := "#!/bin/bash\nprintf '{\"op\":\"release\"}\\n' >&\"$USIPIPO_UPGRADE_FD\"\nread -r line <&\"$USIPIPO_UPGRADE_FD\"\nexit 3\n"
	if err := os.WriteFile(dies, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct {
		bin, want string
		code      int // 3: refused before anything started
	}{
		{exits, "exited before it was ready (exit status 1)", 1},
		{dies, "exited before it was ready (exit status 3)", 1},
		{filepath.Join(dir, "missing"), "no such file", 3},
	} {
		out, err := n.cli(v1, "upgrade", "--binary", c.bin, "--timeout", "20s")
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != c.code || !strings.Contains(out, c.want) {
			t.Fatalf("upgrade to %s: err %v, output %q, want %q and status %d", filepath.Base(c.bin), err, out, c.want, c.code)
		}
		st, err := n.status()
		if err != nil || st.PID != before.PID {
			t.Fatalf("after the failed upgrade to %s: %+v %v", filepath.Base(c.bin), st, err)
		}
		// The store is open again: a write goes through.
		var u map[string]any
		n.call("user.add", admin.UserAdd{TelegramID: int64(100 + i)}, &u)
	}
	if !strings.Contains(n.logs.String(), "upgrade_rolled_back") {
		t.Error("the store was never released and reopened")
	}
	p.finish(t)
}
