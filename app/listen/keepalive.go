package listen

import (
	"context"
	"net"
)

// listenStream opens a new stream listener. TCP listeners come from
// tcpListenConfig, which may move per-connection socket options onto the
// listener (see keepalive_linux.go).
func listenStream(network, addr string) (net.Listener, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
		return tcpListenConfig().Listen(context.Background(), network, addr)
	}
	return net.Listen(network, addr)
}
