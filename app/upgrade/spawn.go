package upgrade

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// Child is a successor started by Start.
type Child struct {
	Cmd  *exec.Cmd
	Conn *Conn

	exited  chan struct{}
	waitErr error // set before exited closes
}

// Exited is closed once the successor has exited; Wait then returns at once.
func (c *Child) Exited() <-chan struct{} { return c.exited }

// Wait waits for the successor to exit and returns its exit error.
func (c *Child) Wait() error {
	<-c.exited
	return c.waitErr
}

// PID is the successor's process id.
func (c *Child) PID() int { return c.Cmd.Process.Pid }

// Kill kills the successor and waits for it to exit (so that its lock on
// the database is gone), unless it already has. It returns the exit error.
func (c *Child) Kill() error {
	c.Conn.Close()
	_ = c.Cmd.Process.Signal(syscall.SIGKILL)
	return c.Wait()
}

// CheckBinary refuses a path that cannot be a successor before anything
// is started: missing, not a regular file, not executable.
func CheckBinary(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("new binary: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("new binary %s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("new binary %s is not executable", path)
	}
	return nil
}

// Start starts binary with args and env, passing files (the listener
// registry's Export, in order, as fds 3…) and the control socket as the
// next descriptor, named in env by EnvFD. The child writes to stdout and
// stderr directly (they are the service's journal), never through a pipe
// that would break when this process exits. Start does not close files.
func Start(binary string, args, env []string, files []*os.File, stdout, stderr io.Writer) (*Child, error) {
	if err := CheckBinary(binary); err != nil {
		return nil, err
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("upgrade: control socket: %w", err)
	}
	mine := os.NewFile(uintptr(fds[0]), "upgrade-control")
	theirs := os.NewFile(uintptr(fds[1]), "upgrade-control")
	defer theirs.Close()
	cconn, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		return nil, fmt.Errorf("upgrade: control socket: %w", err)
	}
	cmd := exec.Command(binary, args...)
	cmd.Env = append(env[:len(env):len(env)], EnvFD+"="+strconv.Itoa(3+len(files)))
	cmd.ExtraFiles = append(files[:len(files):len(files)], theirs)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Its own process group: a ^C meant for an operator's foreground node
	// must not kill the successor half-way.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		cconn.Close()
		return nil, fmt.Errorf("starting the new binary: %w", err)
	}
	c := &Child{Cmd: cmd, Conn: newConn(cconn), exited: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// ExitReason describes how a successor ended before it was ready.
func ExitReason(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return "the new binary exited before it was ready (" + ee.ProcessState.String() + ")"
	}
	if err == nil {
		return "the new binary exited before it was ready (exit status 0)"
	}
	return "the new binary failed: " + err.Error()
}
