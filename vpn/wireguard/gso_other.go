//go:build !linux

package wireguard

import "net"

const (
	gsoMaxSegments = 1
	gsoMaxPayload  = 0
	gsoOOBSize     = 1
)

func gsoSupported(*net.UDPConn) bool       { return false }
func putGSOSize(b []byte, _ uint16) []byte { return b }
func gsoRefused(error) bool                { return false }

func forceBuffers(*net.UDPConn, int) {}

func enableGRO(*net.UDPConn) bool { return false }

func groSize([]byte) int { return 0 }
