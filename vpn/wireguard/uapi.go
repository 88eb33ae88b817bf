package wireguard

import (
	"bufio"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// devPeer is one peer's state as the device reports it (IpcGet).
type devPeer struct {
	rx, tx    uint64
	handshake time.Time // zero if none yet
	endpoint  netip.AddrPort
}

// parseIpcGet reads the peers of a UAPI "get" response, keyed by hex public
// key. Device-level keys and unknown peer keys are skipped, as the protocol
// allows new keys; malformed values are errors.
func parseIpcGet(s string) (map[string]devPeer, error) {
	peers := map[string]devPeer{}
	var key string
	var cur devPeer
	var sec, nsec int64
	flush := func() {
		if key != "" {
			if sec != 0 || nsec != 0 {
				cur.handshake = time.Unix(sec, nsec)
			}
			peers[key] = cur
		}
	}
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("uapi line %q has no '='", line)
		}
		if k == "public_key" {
			flush()
			if len(v) != 64 || strings.Trim(v, "0123456789abcdef") != "" {
				return nil, fmt.Errorf("uapi public key %q is malformed", v)
			}
			key, cur, sec, nsec = v, devPeer{}, 0, 0
			continue
		}
		if key == "" {
			continue
		}
		if err := cur.set(k, v, &sec, &nsec); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading uapi: %w", err)
	}
	flush()
	return peers, nil
}

func (p *devPeer) set(k, v string, sec, nsec *int64) error {
	var err error
	switch k {
	case "rx_bytes":
		p.rx, err = strconv.ParseUint(v, 10, 64)
	case "tx_bytes":
		p.tx, err = strconv.ParseUint(v, 10, 64)
	case "last_handshake_time_sec":
		*sec, err = strconv.ParseInt(v, 10, 64)
	case "last_handshake_time_nsec":
		*nsec, err = strconv.ParseInt(v, 10, 64)
	case "endpoint":
		p.endpoint, err = netip.ParseAddrPort(v)
	default:
		return nil
	}
	if err != nil {
		return fmt.Errorf("uapi %s: %w", k, err)
	}
	return nil
}
