package mtproto

import (
	"context"
	"crypto/cipher"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/usipipo/usipipo/proxy/mtproto/wire"
	"golang.org/x/sys/unix"
)

// errCut ends a relay whose secret expired or ran out of budget.
var errCut = errors.New("mtproto: credential cut off")

// relay connects a client whose handshake named sec and init (raw: its
// bytes) to the DC, re-obfuscating the stream towards it. cr reads the
// client's stream (the TLS record reader in FakeTLS mode).
func (s *Server) relay(c net.Conn, cr io.Reader, tlsMode bool, src netip.Addr, sec *secret, init wire.Init, raw *[wire.InitLen]byte) {
	now := time.Now()
	if sec.cut(now, s.epoch) {
		s.m.handshake("cut").Inc()
		return
	}
	if err := sec.admit(c, src, now); err != nil {
		s.m.handshake("limit").Inc()
		return
	}
	defer sec.release(c)
	addr, err := dcAddr(s.opts.DCs, init.DC)
	if err != nil {
		s.m.handshake("bad_dc").Inc()
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.HandshakeTimeout)
	dc, err := s.opts.Dial(ctx, sec.id, "tcp", addr)
	cancel()
	if err != nil {
		s.m.handshake("dc_dial").Inc()
		s.log.Warn("mtproto_dc_dial", "credential", sec.id, "dc", init.DC, "error", err)
		return
	}
	defer dc.Close()
	// Close must also end a relay whose client half-closed: its down leg
	// waits on the DC alone.
	defer context.AfterFunc(s.ctx, func() { dc.Close() })()
	dcInit, dcEnc, down, err := s.dcInit(init, raw, sec)
	if err != nil {
		s.log.Error("mtproto_dc_init", "error", err)
		return
	}
	dc.SetWriteDeadline(time.Now().Add(s.opts.HandshakeTimeout))
	if _, err := dc.Write(dcInit[:]); err != nil {
		return
	}
	c.SetDeadline(time.Time{})
	dc.SetDeadline(time.Time{})
	s.m.conns.Inc()
	defer s.m.conns.Dec()

	up := leg{src: c, r: cr, dst: dc, dec: init.Dec, enc: dcEnc, count: &sec.rx, dir: 0}
	down.src, down.r, down.dst, down.count, down.dir, down.records = dc, dc, c, &sec.tx, 1, tlsMode
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.pipe(sec, &down)
	}()
	s.pipe(sec, &up)
	<-done
}

// leg is one direction of a relay.
type leg struct {
	src      net.Conn  // where readiness and deadlines are taken
	r        io.Reader // reads src's stream (maybe out of TLS records)
	dst      net.Conn
	dec, enc cipher.Stream // both nil: bytes pass as they are (fast mode)
	count    *atomic.Uint64
	dir      int  // 0: from the client, 1: to it
	records  bool // wrap what is written in TLS application-data records
}

// pipe copies one direction until EOF (then half-closes dst) or an error
// (then closes both sides, which ends the other direction too).
func (s *Server) pipe(sec *secret, l *leg) {
	err := s.copyLeg(sec, l)
	if err == nil {
		if cw, ok := l.dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			return
		}
	}
	l.src.Close()
	l.dst.Close()
}

// copyLeg moves bytes until EOF (nil) or an error. It takes a pooled buffer
// only once src is readable, so an idle relay holds none; while reads keep
// filling the buffer (bulk transfer) it keeps it and skips the readiness
// poll. The idle deadline is refreshed at most every second.
func (s *Server) copyLeg(sec *secret, l *leg) error {
	head := 0
	if l.records {
		head = wire.RecordHeaderLen
	}
	var bp *[]byte
	defer func() {
		if bp != nil {
			s.pool.Put(bp)
		}
	}()
	var armed time.Time
	for {
		if now := time.Now(); now.Sub(armed) > time.Second {
			l.src.SetReadDeadline(now.Add(s.opts.IdleTimeout))
			armed = now
		}
		if bp == nil {
			if err := waitReadable(l.src); err != nil {
				return err
			}
			bp = s.pool.Get().(*[]byte)
		}
		n, err := s.move(sec, l, (*bp)[:head+wire.MaxRecordPayload], head)
		if n < wire.MaxRecordPayload { // drained: release the buffer while waiting
			s.pool.Put(bp)
			bp = nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// move does one read and its write.
func (s *Server) move(sec *secret, l *leg, buf []byte, head int) (int, error) {
	n, err := l.r.Read(buf[head:])
	if n > 0 {
		p := buf[head : head+n]
		if l.dec != nil {
			l.dec.XORKeyStream(p, p)
			l.enc.XORKeyStream(p, p)
		}
		l.count.Add(uint64(n))
		if sec.cut(time.Now(), s.epoch) {
			return n, errCut
		}
		if lim := sec.limiter(l.dir, s.epoch); lim != nil {
			if werr := lim.WaitN(s.ctx, n); werr != nil {
				return n, werr
			}
		}
		if head > 0 {
			wire.PutRecordHeader(buf, n)
		}
		l.dst.SetWriteDeadline(time.Now().Add(s.opts.IdleTimeout))
		if _, werr := l.dst.Write(buf[:head+n]); werr != nil {
			return n, werr
		}
	}
	return n, err
}

// waitReadable blocks until c has bytes (or EOF, or an error) to read,
// through the runtime's poller and without a buffer; read deadlines apply.
func waitReadable(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var one [1]byte
	return rc.Read(func(fd uintptr) bool {
		_, _, err := unix.Recvfrom(int(fd), one[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return !errors.Is(err, unix.EAGAIN)
	})
}
