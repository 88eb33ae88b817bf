//go:build linux

package listen

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// Keepalive as net sets it on every accepted TCP connection: 15 s idle,
// 15 s between probes, 9 probes.
const (
	keepIdle  = 15
	keepIntvl = 15
	keepCount = 9
)

// tcpListenConfig sets net's keepalive once, on the listening socket, and
// tells net not to set it per connection: Linux copies SO_KEEPALIVE and
// the TCP_KEEP* options to every socket the listener accepts, so each
// accepted connection costs four setsockopt calls fewer and keeps the same
// keepalive. (A listener inherited after a handover keeps these options,
// and net sets them per connection again, as it did before.)
func tcpListenConfig() *net.ListenConfig {
	return &net.ListenConfig{KeepAlive: -1, Control: keepaliveOnListener}
}

func keepaliveOnListener(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		for _, o := range []struct{ level, opt, v int }{
			{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
			{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, keepIdle},
			{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, keepIntvl},
			{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, keepCount},
		} {
			if serr = unix.SetsockoptInt(int(fd), o.level, o.opt, o.v); serr != nil {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}
