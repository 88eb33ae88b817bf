package sdnotify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// manager is a fake service manager: a real unixgram socket that reads
// datagrams with their sender credentials, as systemd does.
type manager struct {
	conn *net.UnixConn
	name string // what NOTIFY_SOCKET says
}

func listen(t *testing.T, name string) *manager {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	}); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	return &manager{conn: c, name: name}
}

func pathManager(t *testing.T) *manager {
	return listen(t, filepath.Join(t.TempDir(), "notify.sock"))
}

func abstractManager(t *testing.T) *manager {
	var b [8]byte
	rand.Read(b[:])
	return listen(t, "@usipipo-sdnotify-test-"+hex.EncodeToString(b[:]))
}

// next reads one datagram and checks the kernel attributes it to us.
func (m *manager) next(t *testing.T) string {
	t.Helper()
	m.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	n, oobn, _, _, err := m.conn.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatalf("reading notification: %v", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("control messages: %v %d", err, len(msgs))
	}
	cred, err := unix.ParseUnixCredentials(&msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	if int(cred.Pid) != os.Getpid() {
		t.Fatalf("sender pid %d, want %d", cred.Pid, os.Getpid())
	}
	return string(buf[:n])
}

// quiet asserts that nothing arrives within d.
func (m *manager) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	m.conn.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	if n, err := m.conn.Read(buf); err == nil {
		t.Fatalf("unexpected notification %q", buf[:n])
	}
}

func TestNotifications(t *testing.T) {
	for _, mk := range []struct {
		name string
		new  func(*testing.T) *manager
	}{{"path", pathManager}, {"abstract", abstractManager}} {
		t.Run(mk.name, func(t *testing.T) {
			m := mk.new(t)
			t.Setenv(EnvSocket, m.name)
			n, err := FromEnv()
			if err != nil {
				t.Fatal(err)
			}
			if !n.Enabled() {
				t.Fatal("not enabled with NOTIFY_SOCKET set")
			}
			steps := []struct {
				send func() error
				want string
			}{
				{func() error { return n.Ready("") }, "READY=1\n"},
				{func() error { return n.Ready("API ready\non 127.0.0.1") }, "READY=1\nSTATUS=API ready on 127.0.0.1\n"},
				{n.Watchdog, "WATCHDOG=1\n"},
				{func() error { return n.Status("draining") }, "STATUS=draining\n"},
				{func() error { return n.MainPID(4242) }, "MAINPID=4242\n"},
				{func() error { return n.Stopping("shutting down") }, "STOPPING=1\nSTATUS=shutting down\n"},
			}
			for _, s := range steps {
				if err := s.send(); err != nil {
					t.Fatal(err)
				}
				if got := m.next(t); got != s.want {
					t.Fatalf("got %q, want %q", got, s.want)
				}
			}
		})
	}
}

func TestDisabledDoesNothing(t *testing.T) {
	t.Setenv(EnvSocket, "")
	t.Setenv(EnvWatchdogUS, "")
	n, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	var nilN *Notifier
	for _, x := range []*Notifier{n, nilN} {
		if x.Enabled() || x.WatchdogInterval() != 0 {
			t.Fatal("enabled without a socket")
		}
		if err := x.Ready("x"); err != nil {
			t.Fatal(err)
		}
		if err := x.Watchdog(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { x.Run(context.Background()); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Run without a watchdog did not return")
		}
	}
}

func TestFromEnv(t *testing.T) {
	const pid = 1000
	cases := []struct {
		env     map[string]string
		wantWD  time.Duration
		wantErr error
	}{
		{map[string]string{EnvSocket: "/run/systemd/notify", EnvWatchdogUS: "30000000", EnvWatchdogPID: "1000"}, 30 * time.Second, nil},
		{map[string]string{EnvSocket: "/run/systemd/notify", EnvWatchdogUS: "2000000"}, 2 * time.Second, nil},
		// For our parent (an upgrade without ChildEnv): no watchdog here.
		{map[string]string{EnvSocket: "/run/systemd/notify", EnvWatchdogUS: "2000000", EnvWatchdogPID: "999"}, 0, nil},
		{map[string]string{EnvSocket: "@abstract", EnvWatchdogUS: "1"}, time.Microsecond, nil},
		{map[string]string{EnvSocket: "vsock:2:1234"}, 0, ErrSocket},
		{map[string]string{EnvSocket: "relative/path"}, 0, ErrSocket},
		{map[string]string{EnvSocket: "/s", EnvWatchdogUS: "soon"}, 0, ErrWatchdog},
		{map[string]string{EnvSocket: "/s", EnvWatchdogUS: "0"}, 0, ErrWatchdog},
		{map[string]string{EnvSocket: "/s", EnvWatchdogUS: "-5"}, 0, ErrWatchdog},
		{map[string]string{EnvSocket: "/s", EnvWatchdogUS: "99999999999999999999"}, 0, ErrWatchdog},
		{map[string]string{EnvSocket: "/s", EnvWatchdogUS: "5", EnvWatchdogPID: "me"}, 0, ErrWatchdog},
	}
	for i, c := range cases {
		n, err := fromEnv(func(k string) string { return c.env[k] }, pid)
		if !errors.Is(err, c.wantErr) {
			t.Fatalf("case %d: err %v, want %v", i, err, c.wantErr)
		}
		if err == nil && n.WatchdogInterval() != c.wantWD {
			t.Fatalf("case %d: watchdog %v, want %v", i, n.WatchdogInterval(), c.wantWD)
		}
	}
}

func TestMalformed(t *testing.T) {
	m := pathManager(t)
	n, err := New(m.name, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"READY", "A=1\nB=2"} {
		if err := n.Notify(a); err == nil {
			t.Fatalf("%q accepted", a)
		}
	}
	if err := n.MainPID(0); err == nil {
		t.Fatal("MAINPID=0 accepted")
	}
	m.quiet(t, 50*time.Millisecond)
	// A manager that went away is an error for the caller to ignore, not a hang.
	m.conn.Close()
	if err := n.Ready(""); err == nil {
		t.Fatal("no error without a listener")
	}
}

func TestRunPingsAtHalfInterval(t *testing.T) {
	m := abstractManager(t)
	const interval = 200 * time.Millisecond
	n, err := New(m.name, interval)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	start := time.Now()
	go func() { n.Run(ctx); close(done) }()
	var at []time.Duration
	for range 4 {
		if got := m.next(t); got != "WATCHDOG=1\n" {
			t.Fatalf("got %q", got)
		}
		at = append(at, time.Since(start))
	}
	cancel()
	<-done
	if at[0] > interval/2 {
		t.Fatalf("first ping after %v; want one at start", at[0])
	}
	// Pings 1..3 come every half interval: well inside the deadline.
	if gap := (at[3] - at[0]) / 3; gap < interval/4 || gap > interval*3/4 {
		t.Fatalf("mean gap %v, want about %v", gap, interval/2)
	}
	m.quiet(t, interval)
}

func TestRunCheckedStopsPingingWhenUnhealthy(t *testing.T) {
	m := pathManager(t)
	n, err := New(m.name, 40*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	var sick atomic.Bool
	var checks atomic.Int32
	check := func(ctx context.Context) error {
		checks.Add(1)
		if _, ok := ctx.Deadline(); !ok {
			return fmt.Errorf("check has no deadline")
		}
		if sick.Load() {
			return errors.New("store unreadable")
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.RunChecked(ctx, check); close(done) }()
	defer func() { cancel(); <-done }()
	if got := m.next(t); got != "WATCHDOG=1\n" {
		t.Fatalf("got %q", got)
	}
	sick.Store(true)
	// Drain pings already in flight, then expect the status and silence.
	for {
		got := m.next(t)
		if got == "WATCHDOG=1\n" {
			continue
		}
		if got != "STATUS=unhealthy: store unreadable\n" {
			t.Fatalf("got %q", got)
		}
		break
	}
	before := checks.Load()
	m.quiet(t, 150*time.Millisecond)
	if checks.Load() <= before {
		t.Fatal("check not retried while unhealthy")
	}
	sick.Store(false)
	if got := m.next(t); got != "STATUS=healthy\n" {
		t.Fatalf("got %q", got)
	}
	if got := m.next(t); got != "WATCHDOG=1\n" {
		t.Fatalf("got %q", got)
	}
}

func TestChildEnv(t *testing.T) {
	env := []string{"PATH=/bin", "NOTIFY_SOCKET=/run/systemd/notify", "WATCHDOG_USEC=30000000", "WATCHDOG_PID=17", "WATCHDOG_PIDX=keep"}
	got := strings.Join(ChildEnv(env), " ")
	want := "PATH=/bin NOTIFY_SOCKET=/run/systemd/notify WATCHDOG_USEC=30000000 WATCHDOG_PIDX=keep"
	if got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	// The successor reads it as its own watchdog.
	n, err := fromEnv(func(k string) string {
		for _, kv := range ChildEnv(env) {
			if v, ok := strings.CutPrefix(kv, k+"="); ok {
				return v
			}
		}
		return ""
	}, 18)
	if err != nil || n.WatchdogInterval() != 30*time.Second {
		t.Fatalf("successor watchdog %v, %v", n.WatchdogInterval(), err)
	}
}
