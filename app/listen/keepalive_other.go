//go:build !linux

package listen

import "net"

// tcpListenConfig is net's default elsewhere: keepalive set per connection.
func tcpListenConfig() *net.ListenConfig { return &net.ListenConfig{} }
