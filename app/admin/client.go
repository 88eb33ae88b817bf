package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// ErrNotRunning means no node answers on the socket.
var ErrNotRunning = errors.New("node is not running")

// Client calls a node over its admin socket.
type Client struct{ path string }

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client { return &Client{path: path} }

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return nil, fmt.Errorf("%w (no node answers on %s; start it with `usipipo serve`)", ErrNotRunning, c.path)
		}
		if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EACCES) {
			return nil, fmt.Errorf("cannot open %s: permission denied (run as the node's user or root)", c.path)
		}
		return nil, fmt.Errorf("connecting to %s: %w", c.path, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	return conn, nil
}

// Call makes a call and decodes its result into out (which may be nil).
func (c *Client) Call(ctx context.Context, method string, params, out any) error {
	conn, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, _, err := roundTrip(conn, method, params, nil)
	if err != nil {
		return err
	}
	return decodeResult(resp, out)
}

// Download makes a call whose answer is a stream, copied to w.
func (c *Client) Download(ctx context.Context, method string, params any, w io.Writer) (int64, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	resp, br, err := roundTrip(conn, method, params, nil)
	if err != nil {
		return 0, err
	}
	if err := decodeResult(resp, nil); err != nil {
		return 0, err
	}
	if !resp.Stream {
		return 0, fmt.Errorf("%s: node sent no stream", method)
	}
	n, err := io.Copy(w, br)
	if err != nil {
		return n, fmt.Errorf("receiving %s: %w", method, err)
	}
	return n, nil
}

// Upload makes a call that sends r as a stream and decodes the result.
func (c *Client) Upload(ctx context.Context, method string, params any, r io.Reader, out any) error {
	conn, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, _, err := roundTrip(conn, method, params, r)
	if err != nil {
		return err
	}
	return decodeResult(resp, out)
}

func roundTrip(conn net.Conn, method string, params any, upload io.Reader) (*Response, *bufio.Reader, error) {
	req := Request{Method: method, Stream: upload != nil}
	if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			return nil, nil, fmt.Errorf("encoding %s params: %w", method, err)
		}
		req.Params = b
	}
	line, err := json.Marshal(req)
	if err != nil {
		return nil, nil, err
	}
	if _, err := conn.Write(append(line, '\n')); err != nil {
		return nil, nil, fmt.Errorf("sending %s: %w", method, err)
	}
	if upload != nil {
		if _, err := io.Copy(conn, upload); err != nil {
			return nil, nil, fmt.Errorf("sending %s stream: %w", method, err)
		}
		if uc, ok := conn.(*net.UnixConn); ok {
			uc.CloseWrite()
		}
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	respLine, err := br.ReadBytes('\n')
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s answer: %w", method, err)
	}
	var resp Response
	if err := json.Unmarshal(respLine, &resp); err != nil {
		return nil, nil, fmt.Errorf("decoding %s answer: %w", method, err)
	}
	return &resp, br, nil
}

func decodeResult(resp *Response, out any) error {
	if resp.Error != nil {
		return resp.Error
	}
	if out == nil || len(resp.Result) == 0 {
		return nil
	}
	if err := json.Unmarshal(resp.Result, out); err != nil {
		return fmt.Errorf("decoding result: %w", err)
	}
	return nil
}
