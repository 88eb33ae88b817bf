package mtproto

import (
	"context"
	"errors"
	"io"
	"net"
	"time"
)

// front splices a connection that is not ours to the cloak domain's real
// server, replaying the bytes already read, so the port behaves like that
// site to browsers and probes alike.
func (s *Server) front(c net.Conn, prefix []byte, why string) {
	s.m.set.GetOrCreateCounter(`usipipo_mtproto_fronted_total{reason="` + why + `"}`).Inc()
	if s.opts.FrontAddr == "" {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.HandshakeTimeout)
	f, err := s.opts.FrontDial(ctx, "tcp", s.opts.FrontAddr)
	cancel()
	if err != nil {
		s.log.Warn("mtproto_front_dial", "error", err)
		return
	}
	defer f.Close()
	c.SetDeadline(time.Time{})
	if _, err := f.Write(prefix); err != nil {
		return
	}
	stop := context.AfterFunc(s.ctx, func() { f.Close() })
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.splice(c, f)
	}()
	s.splice(f, c)
	<-done
}

// splice copies src to dst until EOF, which it passes on as a half-close;
// on an error or IdleTimeout without traffic it closes both. Like the
// relay, it holds a pooled buffer only while bytes are moving.
func (s *Server) splice(dst, src net.Conn) {
	for {
		src.SetReadDeadline(time.Now().Add(s.opts.IdleTimeout))
		err := waitReadable(src)
		if err == nil {
			bp := s.pool.Get().(*[]byte)
			var n int
			n, err = src.Read(*bp)
			if n > 0 {
				dst.SetWriteDeadline(time.Now().Add(s.opts.IdleTimeout))
				if _, werr := dst.Write((*bp)[:n]); werr != nil {
					err = werr
				}
			}
			s.pool.Put(bp)
		}
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) {
			if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
				return
			}
		}
		dst.Close()
		src.Close()
		return
	}
}
