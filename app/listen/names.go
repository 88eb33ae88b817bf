package listen

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Unix socket files and the names sockets are passed under.

func isAbstract(path string) bool { return strings.HasPrefix(path, "@") }

func chmodSocket(path string) error {
	if isAbstract(path) {
		return nil
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("listen: chmod %s: %w", path, err)
	}
	return nil
}

// removeStale removes a socket file at path that nothing answers on. A
// live socket, or a file that is not a socket, is left alone (the listen
// that follows then fails with "address already in use").
func removeStale(network, path string) error {
	if isAbstract(path) || path == "" {
		return nil
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listen: %s %s: %w", network, path, err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("listen: %s %s: file exists and is not a socket", network, path)
	}
	c, err := net.DialTimeout(network, path, staleDialTimeout)
	if err == nil {
		c.Close()
		return fmt.Errorf("listen: %s %s: %w (a server answers on it)", network, path, syscall.EADDRINUSE)
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("listen: remove stale %s: %w", path, err)
		}
		return nil
	case errors.Is(err, syscall.ENOENT):
		return nil // gone meanwhile
	default:
		return fmt.Errorf("listen: probe existing %s: %w", path, err)
	}
}

// encodeName is the LISTEN_FDNAMES name of k; see the package doc.
func encodeName(k key) string {
	return k.network + "|" + escape(k.addr)
}

// decodeName parses a name made by encodeName.
func decodeName(name string) (key, bool) {
	network, enc, ok := strings.Cut(name, "|")
	if !ok {
		return key{}, false
	}
	switch network {
	case "tcp", "tcp4", "tcp6", "unix", "unixpacket", "udp", "udp4", "udp6", "unixgram":
	default:
		return key{}, false
	}
	addr, ok := unescape(enc)
	if !ok {
		return key{}, false
	}
	return key{network, addr}, true
}

func safeByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("._~/@+,=[]-", c) >= 0
}

const hexDigits = "0123456789ABCDEF"

func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if safeByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func unescape(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			if !safeByte(c) {
				return "", false
			}
			b.WriteByte(c)
			continue
		}
		if i+3 > len(s) {
			return "", false
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), true
}
