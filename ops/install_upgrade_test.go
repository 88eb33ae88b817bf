package ops

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/admin"
	"github.com/usipipo/usipipo/app/node"
)

// TestInstallUpgradesRunningNode re-runs the installer while a node runs
// from the installed binary: the installer hands the node over with
// `usipipo upgrade` instead of restarting the service.
func TestInstallUpgradesRunningNode(t *testing.T) {
	dist := release(t)
	in := newInstaller(t, serve(t, dist))
	in.mustRun(nil)

	ports := make([]string, 4)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().String()
		ln.Close()
	}
	cmd := exec.Command(in.binPath, "serve", "--data", in.dataDir, "--http", ports[0], "--wg-listen", ports[1],
		"--wg-mode", "netstack", "--ss-listen", ports[2], "--mtproto-listen", ports[3])
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	cl := admin.NewClient(filepath.Join(in.dataDir, "admin.sock"))
	status := func() (node.Status, error) {
		var st node.Status
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return st, cl.Call(ctx, "node.status", nil, &st)
	}
	t.Cleanup(func() {
		if st, err := status(); err == nil && st.PID != cmd.Process.Pid {
			syscall.Kill(st.PID, syscall.SIGTERM)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
		}
	})
	var before node.Status
	for deadline := time.Now().Add(60 * time.Second); ; {
		var err error
		if before, err = status(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node not serving: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	out, calls := in.mustRun(nil)
	mustNotHave(t, calls, "systemctl restart", "systemctl start")
	if !strings.Contains(out, "upgraded in place") {
		t.Fatalf("installer output:\n%s", out)
	}
	after, err := status()
	if err != nil || after.PID == before.PID || after.Upgrade == nil || after.Upgrade.OldPID != before.PID {
		t.Fatalf("after the installer: %+v %v (before: pid %d)", after, err, before.PID)
	}
	// The old process had no connections to drain: it is gone.
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("old process: %v", err)
		}
		exited <- nil
	case <-time.After(20 * time.Second):
		t.Fatal("the old process did not exit")
	}
}
