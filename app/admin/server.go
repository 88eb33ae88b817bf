package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/usipipo/usipipo/app"
)

// Node is what the socket needs from the running node beyond the service
// layer: backups, restores, status and the store check.
type Node interface {
	Status(ctx context.Context) (any, error)
	Backup(ctx context.Context, w io.Writer, passphrase []byte) error
	Restore(ctx context.Context, r io.Reader, passphrase []byte) (any, error)
	Check(ctx context.Context) error
}

// Server answers calls on the admin socket.
type Server struct {
	svc  *app.Service
	node Node
	log  *slog.Logger

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
	closed bool
}

// NewServer returns a server; Serve starts it.
func NewServer(svc *app.Service, node Node, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{svc: svc, node: node, log: log, conns: map[net.Conn]struct{}{}}
}

// Serve accepts calls on ln until it is closed.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("admin socket: %w", err)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			conn.Close()
			return nil
		}
		s.conns[conn] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.handle(ctx, conn)
			s.mu.Lock()
			delete(s.conns, conn)
			s.mu.Unlock()
			conn.Close()
		}()
	}
}

// Shutdown waits for calls in progress until ctx ends, then cuts them.
func (s *Server) Shutdown(ctx context.Context) {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		<-done
	}
}

// maxRequestLine bounds a request's JSON line.
const maxRequestLine = 1 << 20

func (s *Server) handle(ctx context.Context, conn net.Conn) {
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReaderSize(conn, 64<<10)
	line, err := readLine(br, maxRequestLine)
	if err != nil {
		writeResponse(conn, Response{Error: &Error{Code: "invalid", Message: "bad request: " + err.Error()}})
		return
	}
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		writeResponse(conn, Response{Error: &Error{Code: "invalid", Message: "bad request: " + err.Error()}})
		return
	}
	conn.SetReadDeadline(time.Time{})
	start := time.Now()
	call := &call{req: req, body: br, conn: conn}
	result, err := s.dispatch(ctx, call)
	s.log.Info("admin_call", "method", req.Method, "duration_ms", float64(time.Since(start).Microseconds())/1000,
		"ok", err == nil)
	if call.streamed {
		return // the stream itself was the answer
	}
	if err != nil {
		writeResponse(conn, Response{Error: toError(err)})
		return
	}
	b, err := json.Marshal(result)
	if err != nil {
		writeResponse(conn, Response{Error: toError(err)})
		return
	}
	writeResponse(conn, Response{Result: b})
}

func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var out []byte
	for {
		chunk, err := br.ReadSlice('\n')
		out = append(out, chunk...)
		if len(out) > max {
			return nil, fmt.Errorf("request longer than %d bytes", max)
		}
		if err == nil {
			return out, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
}

func writeResponse(w io.Writer, r Response) {
	b, _ := json.Marshal(r)
	w.Write(append(b, '\n'))
}

// call is one call in progress.
type call struct {
	req      Request
	body     io.Reader
	conn     net.Conn
	streamed bool
}

func (c *call) params(v any) error {
	if len(c.req.Params) == 0 {
		return nil
	}
	if err := json.Unmarshal(c.req.Params, v); err != nil {
		return fmt.Errorf("%s params: %w: %v", c.req.Method, errInvalid, err)
	}
	return nil
}

// stream answers with a stream header and hands the connection to write.
func (c *call) stream(write func(w io.Writer) error) error {
	b, _ := json.Marshal(Response{Stream: true})
	// The header goes out only once the producer has started without error,
	// so a failure before the first byte is still a clean error answer.
	pw := &headerWriter{w: c.conn, header: append(b, '\n')}
	if err := write(pw); err != nil {
		if !pw.sent {
			return err
		}
		c.streamed = true
		return err
	}
	if !pw.sent {
		pw.Write(nil)
	}
	c.streamed = true
	return nil
}

type headerWriter struct {
	w      io.Writer
	header []byte
	sent   bool
}

func (h *headerWriter) Write(p []byte) (int, error) {
	if !h.sent {
		h.sent = true
		if _, err := h.w.Write(h.header); err != nil {
			return 0, err
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	return h.w.Write(p)
}
