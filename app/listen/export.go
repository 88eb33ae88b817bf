package listen

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Handing sockets on to a child process.

// Export returns what a child needs to take over every registered socket
// that is still open: files, to be passed in order as exec.Cmd.ExtraFiles,
// and env, to be appended to the child's environment (LISTEN_FDS,
// LISTEN_FDNAMES, LISTEN_PPID=os.Getpid()). The files are duplicates: the
// caller closes them once the child has started, and this process keeps
// serving on its own sockets until it closes them. Exporting does not
// change the sockets' blocking mode.
func (r *Registry) Export() (files []*os.File, env []string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, nil, fmt.Errorf("listen: export: registry closed: %w", net.ErrClosed)
	}
	var names []string
	var exported []*entry
	defer func() {
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			files, env = nil, nil
		}
	}()
	for _, e := range r.active {
		f, err := dupFile(e)
		if errors.Is(err, net.ErrClosed) {
			continue // closed by its user: nothing to hand over
		}
		if err != nil {
			return files, nil, err
		}
		files = append(files, f)
		names = append(names, encodeName(e.key))
		exported = append(exported, e)
	}
	for _, e := range exported {
		e.exported = true
	}
	env = []string{
		EnvFDs + "=" + strconv.Itoa(len(files)),
		EnvFDNames + "=" + strings.Join(names, ":"),
		EnvPPID + "=" + strconv.Itoa(os.Getpid()),
	}
	return files, env, nil
}

// dupFile duplicates e's descriptor into a new *os.File.
//
// It does not use (*net.TCPListener).File and friends: os.StartProcess
// calls Fd on ExtraFiles, and Fd on such a file puts the descriptor into
// blocking mode. O_NONBLOCK belongs to the open file description, which the
// duplicate shares with the socket this process still serves on, so its
// Accept would then block a thread in accept(2) and Close would hang. A
// file made by os.NewFile from a plain dup keeps the flag as it is.
func dupFile(e *entry) (*os.File, error) {
	rc, err := e.syscallConn()
	if err != nil {
		return nil, err
	}
	var nfd int
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		if errors.Is(err, net.ErrClosed) || isClosing(err) {
			return nil, net.ErrClosed
		}
		return nil, fmt.Errorf("listen: export %s: %w", e.key, err)
	}
	if derr != nil {
		return nil, fmt.Errorf("listen: export %s: dup: %w", e.key, derr)
	}
	return os.NewFile(uintptr(nfd), encodeName(e.key)), nil
}

func isClosing(err error) bool {
	return strings.Contains(err.Error(), "use of closed")
}
