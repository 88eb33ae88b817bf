package shadowmere

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/usipipo/usipipo/vpn/outline"
)

// Check probes each proxy (Parallel at a time) and returns the live ones
// sorted by latency, the SIP004-checked ones first at equal latency.
func (l *List) Check(ctx context.Context, ps []Proxy) []Proxy {
	var mu sync.Mutex
	live := []Proxy{}
	sem := make(chan struct{}, l.opts.Parallel)
	var wg sync.WaitGroup
	for _, p := range ps {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return live
		}
		wg.Go(func() {
			defer func() { <-sem }()
			lat, how, err := l.Probe(ctx, p)
			if err != nil {
				return
			}
			p.Latency, p.Checked, p.Check = lat, time.Now().UTC(), how
			mu.Lock()
			live = append(live, p)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.SortFunc(live, func(a, b Proxy) int {
		if a.Latency != b.Latency {
			return int(a.Latency - b.Latency)
		}
		return cmpCheck(a.Check, b.Check)
	})
	return live
}

func cmpCheck(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == CheckShadowsocks:
		return -1
	}
	return 1
}

// Probe checks one proxy within CheckTimeout: for a method we implement, a
// Shadowsocks AEAD handshake asking for Target, Request sent through it and
// one byte of the reply read back (latency: dial to that byte); otherwise a
// TCP connect (latency: the connect). The dial goes through the egress
// dialer, so a proxy at a refused address is never contacted.
func (l *List) Probe(ctx context.Context, p Proxy) (time.Duration, string, error) {
	ctx, cancel := context.WithTimeout(ctx, l.opts.CheckTimeout)
	defer cancel()
	ciph, cerr := outline.NewCipher(p.Method, p.Password)
	start := time.Now()
	c, err := l.opts.Dial(ctx, "tcp", p.Addr())
	if err != nil {
		return 0, "", fmt.Errorf("shadowmere: %s: %w", p.Addr(), err)
	}
	defer c.Close()
	if cerr != nil { // a method we do not speak (or no password): reachability is all we can tell
		return time.Since(start), CheckTCP, nil
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := l.handshake(c, ciph); err != nil {
		return 0, "", fmt.Errorf("shadowmere: %s: %w", p.Addr(), err)
	}
	return time.Since(start), CheckShadowsocks, nil
}

// handshake sends the salt, the target address and the request in one
// chunk (as ss-local does with fast open) and reads one byte of the reply.
func (l *List) handshake(c net.Conn, ciph *outline.Cipher) error {
	salt := make([]byte, ciph.SaltSize())
	if _, err := io.ReadFull(l.opts.Rand, salt); err != nil {
		return fmt.Errorf("salt: %w", err)
	}
	w, err := outline.NewStreamWriter(c, ciph, salt)
	if err != nil {
		return err
	}
	target, err := socksTarget(l.opts.Target)
	if err != nil {
		return err
	}
	if _, err := w.Write(append(outline.AppendAddr(nil, target), l.opts.Request...)); err != nil {
		return fmt.Errorf("sending: %w", err)
	}
	r, err := outline.NewStreamReader(c, ciph)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoReply, err)
	}
	var one [1]byte
	if _, err := io.ReadFull(r, one[:]); err != nil {
		return fmt.Errorf("%w: %w", ErrNoReply, err)
	}
	return nil
}

// socksTarget turns host:port into the target header's address.
func socksTarget(hostport string) (outline.Addr, error) {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return outline.Addr{IP: ap}, nil
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return outline.Addr{}, fmt.Errorf("target %q: %w", hostport, err)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return outline.Addr{}, fmt.Errorf("target %q: port: %w", hostport, err)
	}
	return outline.Addr{Host: host, Port: uint16(n)}, nil
}
