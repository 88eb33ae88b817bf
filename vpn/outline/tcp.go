package outline

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

func (s *Server) acceptLoop() {
	for {
		c, err := s.accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("outline_accept_failed", "error", err.Error())
			select {
			case <-time.After(50 * time.Millisecond): // EMFILE and friends: do not spin
			case <-s.ctx.Done():
				return
			}
			continue
		}
		s.m.accepted.Inc()
		s.run.Go(func() { s.serveTCP(c) })
	}
}

// accept takes the next connection, on the listener's descriptor when
// it can.
func (s *Server) accept() (net.Conn, error) {
	if s.sockLn != nil {
		return s.sockLn.accept()
	}
	return s.o.Listener.Accept()
}

// dialTarget connects to target under the egress policy. An address
// target is checked and then connected by the server itself (fewer system
// calls than net's dial; see sock_linux.go); a name goes through the
// egress dialer, which checks each address it resolves to.
func (s *Server) dialTarget(cred string, target Addr) (net.Conn, error) {
	if leanDial && target.Host == "" {
		if err := s.o.Egress.CheckFor(cred, target.IP); err != nil {
			return nil, err
		}
		return dialSock(s.ctx, target.IP, s.o.Egress.ConnectTimeout())
	}
	return s.o.Egress.DialFor(s.ctx, cred, "tcp", target.String())
}

func remoteIP(c net.Conn) netip.Addr {
	if a, ok := c.(interface{ remoteAP() netip.AddrPort }); ok {
		return a.remoteAP().Addr().Unmap()
	}
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	return ap.Addr().Unmap()
}

// serveTCP authenticates one connection and relays it. Anything that does
// not authenticate is drained until the handshake deadline, then closed
// with a FIN, so a probe cannot tell this server from a silent one by when
// or how it hangs up.
func (s *Server) serveTCP(c net.Conn) {
	defer c.Close()
	defer s.track(c)()
	deadline := time.Now().Add(s.o.HandshakeTimeout)
	c.SetReadDeadline(deadline)
	src := remoteIP(c)
	set := s.keys.Load()
	// The head is read into its own small buffer, not the relay's: a probe
	// drained for the whole handshake timeout must not hold 96 KiB. One
	// read usually takes a client's whole first segment, so the relay's
	// reader does not have to read again for the rest of its first chunk.
	head := make([]byte, headSize)
	n, err := io.ReadAtLeast(c, head, max(set.maxSalt, minSaltSize)+lenChunkSize)
	if err != nil {
		drain(c)
		return
	}
	head = head[:n]
	now := s.o.Now()
	if s.fails.blocked(src, now) {
		s.m.rateLimited.Inc()
		drain(c)
		return
	}
	t0 := time.Now()
	trials, release := pooledTCPTrials(head, &s.derivers)
	m, tried, ok := set.search(s.last.get(src), trials)
	release()
	s.m.trials.Add(tried)
	s.m.searchSec.UpdateDuration(t0)
	if !ok {
		s.fails.failed(src, now)
		s.m.authFailed.Inc()
		drain(c)
		return
	}
	ss := m.e.c.SaltSize()
	if !s.salts.add(head[:ss]) {
		s.fails.failed(src, now)
		s.m.replays.Inc()
		drain(c)
		return
	}
	s.last.put(src, m.e.st.id)
	s.m.authed.Inc()
	bufs := s.bufs.Get().(*relayBufs)
	bufs.in.Reset(c)
	defer func() {
		bufs.in.Reset(nil)
		bufs.pre = prefixReader{}
		s.bufs.Put(bufs)
	}()
	bufs.pre = prefixReader{rest: head[ss+lenChunkSize:], r: bufs.in}
	r := newStreamReader(&bufs.pre, m.aead, 1, m.n)
	r.buf = bufs.rd
	if err := s.proxyTCP(c, src, m.e, r, bufs); err != nil {
		s.m.refused.Inc()
		s.log.Debug("outline_tcp_refused", "key", m.e.st.id, "error", err.Error())
	}
}

// headSize bounds the handshake's first read.
const headSize = 512

// prefixReader returns rest, then reads from r.
type prefixReader struct {
	rest []byte
	r    io.Reader
}

func (p *prefixReader) Read(b []byte) (int, error) {
	if len(p.rest) > 0 {
		n := copy(b, p.rest)
		p.rest = p.rest[n:]
		return n, nil
	}
	return p.r.Read(b)
}

// Buffered is how much Read can return without waiting.
func (p *prefixReader) Buffered() int {
	n := len(p.rest)
	if b, ok := p.r.(buffered); ok {
		n += b.Buffered()
	}
	return n
}

// drain reads and discards until the peer closes or the deadline passes.
func drain(c net.Conn) { io.Copy(io.Discard, c) }

// readTarget opens the first payload chunk and parses the target address
// at its start.
func readTarget(r *StreamReader) (Addr, error) {
	if err := r.readChunk(); err != nil {
		return Addr{}, fmt.Errorf("reading the first chunk: %w", err)
	}
	a, n, err := ParseAddr(r.left)
	if err != nil {
		return Addr{}, err
	}
	r.left = r.left[n:]
	return a, nil
}

// tcpSession is a live relayed connection: closing it ends both sides.
type tcpSession struct{ client, target net.Conn }

func (t *tcpSession) Close() error {
	t.client.Close()
	return t.target.Close()
}

func (s *Server) proxyTCP(c net.Conn, src netip.Addr, e *keyEntry, r *StreamReader, bufs *relayBufs) error {
	target, err := readTarget(r)
	if err != nil {
		return err
	}
	st := e.st
	if st.stopped(s.o.Now()) {
		return errors.New("key stopped")
	}
	// The connect is bounded by the egress dialer's timeout, resolution included.
	out, err := s.dialTarget(st.id, target)
	if err != nil {
		return fmt.Errorf("dialling target: %w", err)
	}
	defer out.Close()
	sess := &tcpSession{client: c, target: out}
	if !st.register(sess, src) {
		return errors.New("key at its connection limit or removed")
	}
	defer st.unregister(sess)
	// A removal racing with register must not leave this connection open.
	if s.keys.Load().byID[st.id] != e || st.stopped(s.o.Now()) {
		return errors.New("key removed")
	}
	c.SetReadDeadline(time.Time{})
	salt := make([]byte, e.c.SaltSize())
	if _, err := rand.Read(salt); err != nil {
		return fmt.Errorf("server salt: %w", err)
	}
	// Our own salts are recorded too: a reflected server stream would
	// otherwise authenticate as a client stream under the same key.
	s.salts.add(salt)
	aead, err := s.aead(e.c, salt)
	if err != nil {
		return err
	}
	w := newStreamWriter(c, aead, salt)
	w.buf = bufs.wr
	s.relay(st, c, r, w, out, bufs)
	return nil
}

// relay copies both ways until both sides are done or either fails.
// relay returns only when both directions have stopped using bufs; the
// caller then closes both sockets.
func (s *Server) relay(st *keyState, client net.Conn, r io.Reader, w io.Writer, target net.Conn, bufs *relayBufs) {
	var ended atomic.Int32
	// A direction that ends cleanly first passes its EOF on as a half
	// close; the second need not, as the full close follows at once with
	// its receive queue read to EOF, so the close sends a FIN, not a RST:
	// one shutdown call fewer per connection.
	finish := func(dst net.Conn, err error) {
		if err != nil {
			client.Close()
			target.Close()
			return
		}
		if ended.Add(1) == 1 {
			closeWrite(dst)
		}
	}
	done := make(chan struct{})
	s.run.Go(func() {
		defer close(done)
		finish(target, s.pipe(st, true, target, r, bufs.up))
	})
	finish(client, s.pipe(st, false, w, target, bufs.down))
	<-done
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		c.Close()
	}
}

// pipe copies src to dst in chunk-sized pieces, counting and pacing them
// for the key. A clean EOF returns nil.
func (s *Server) pipe(st *keyState, up bool, dst io.Writer, src io.Reader, buf []byte) error {
	bytesMetric := s.m.txBytes
	if up {
		bytesMetric = s.m.rxBytes
	}
	for {
		n, err := src.Read(buf)
		if n > 0 {
			st.count(up, n, s.o.Now())
			bytesMetric.Add(n)
			if werr := st.wait(s.ctx, up, n); werr != nil {
				return werr
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
