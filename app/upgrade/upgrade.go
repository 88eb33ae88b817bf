// Package upgrade is the handshake of a zero-downtime upgrade: a running
// node (the old process) starts its successor (the new binary) with every
// listening socket and one end of a control socket pair, and the two agree
// over that pair on who holds the database and who serves.
//
// # Sequence
//
//  1. `usipipo upgrade` asks the old process over DATA/admin.sock
//     (node.upgrade). The old process exports its sockets through the
//     listener registry (app/listen: fds 3… with LISTEN_FDS/LISTEN_FDNAMES/
//     LISTEN_PPID) and starts the new binary with its own arguments and
//     environment, plus the control socket as the next descriptor, named by
//     $USIPIPO_UPGRADE_FD. It keeps duplicates of every socket until the
//     outcome is known.
//  2. The new process reads its settings, takes the sockets, and sends
//     "release": it needs the database, which bbolt locks.
//  3. The old process stops what needs the database — the admin socket and
//     the HTTP server stop accepting and finish their calls, the reconcile
//     loop commits a last usage batch, payments and backups stop — closes
//     the store and answers "released". Its data planes keep serving and
//     accepting meanwhile: they need no database.
//     WireGuard in tun mode is the exception: the new process must create
//     the TUN interface and firewall table, which the kernel lets one
//     process own, so the old one stops WireGuard here (removing both,
//     keeping the UDP socket and its peers' endpoints); conntrack entries,
//     kernel state, survive, and so do the NATed in-tunnel flows.
//  4. The new process opens the store, starts its data planes, HTTP and
//     admin socket on the same sockets (the kernel queues connections while
//     neither accepts) and sends "ready".
//  5. The old process closes its own copies of the listening sockets (the
//     kernel sockets live on in the new process), stops WireGuard (a UDP
//     socket must have one reader), tells systemd MAINPID=<new pid> (it is
//     still the main process, so NotifyAccess=main suffices) and answers
//     "main" with where each WireGuard peer was last heard from; only then
//     does the new process send READY=1 and own the watchdog. WireGuard
//     sessions do not move: the new process starts a handshake with every
//     peer at once, so peers pass traffic again within a round trip. In
//     netstack mode the flows inside the tunnel ended with the old
//     process's stack: in-tunnel TCP connections are cut and clients
//     reconnect them. Shadowsocks UDP, having no connection to keep, moves
//     to the new process with the socket (replies then in flight to the
//     old process's relay sockets are lost, as UDP allows).
//  6. The old process keeps relaying its established Shadowsocks and
//     MTProto connections until they end or the drain timeout passes, then
//     sends the bytes they moved since its last usage batch as "usage"; the
//     new process commits them as one UsageBatch and answers "usage_ok".
//     (Should that fail, the old process logs upgrade_usage_dropped with
//     the byte count: those bytes go unbilled.) Meanwhile the old process
//     enforces the limits it was last given: a credential revoked during
//     the drain is cut there when the drain ends.
//
// If the new process exits, reports "failed", or is not ready within the
// timeout, the old one kills it, takes its sockets back and, if it had
// released the store, opens it again and serves as before.
package upgrade

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/usipipo/usipipo/store"
)

// EnvFD names the control socket's descriptor in the new process.
const EnvFD = "USIPIPO_UPGRADE_FD"

// Operations of the control channel.
const (
	OpRelease  = "release"  // new → old: release the store
	OpReleased = "released" // old → new: the store is closed
	OpReady    = "ready"    // new → old: serving
	OpFailed   = "failed"   // new → old: start-up failed (Error)
	OpMain     = "main"     // old → new: systemd now follows the new process
	OpUsage    = "usage"    // old → new: bytes relayed since the old's last batch
	OpUsageOK  = "usage_ok" // new → old: committed
	OpError    = "error"    // old → new: the old process could not release
)

// Msg is one control message, one JSON line.
type Msg struct {
	Op      string `json:"op"`
	PID     int    `json:"pid,omitempty"`
	Version string `json:"version,omitempty"`
	Error   string `json:"error,omitempty"`
	Usage   *Usage `json:"usage,omitempty"`
	// Endpoints (with "main") are where the old process last heard from
	// each WireGuard peer, by credential id: the new one starts the
	// handshakes, as the sessions stayed with the old process.
	Endpoints map[string]netip.AddrPort `json:"endpoints,omitempty"`
}

// Usage is what the old process's data planes moved after its last
// committed usage batch.
type Usage struct {
	Start  time.Time          `json:"start"`
	Deltas []store.UsageDelta `json:"deltas"`
}

// maxLine bounds one message (10,000 usage deltas fit easily).
const maxLine = 16 << 20

// Conn is one end of the control channel. Send is safe for concurrent use;
// messages are received by one goroutine into Msgs.
type Conn struct {
	c    net.Conn
	mu   sync.Mutex
	msgs chan Msg
	err  error // why Msgs closed; read after it closed
}

func newConn(c net.Conn) *Conn {
	cc := &Conn{c: c, msgs: make(chan Msg, 8)}
	go cc.read()
	return cc
}

func (c *Conn) read() {
	defer close(c.msgs)
	sc := bufio.NewScanner(c.c)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for sc.Scan() {
		var m Msg
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			c.err = fmt.Errorf("upgrade: bad control message: %w", err)
			return
		}
		c.msgs <- m
	}
	c.err = sc.Err()
	if c.err == nil {
		c.err = errors.New("upgrade: the other process closed the control channel")
	}
}

// Msgs delivers received messages; it is closed when the peer closes the
// channel (or sends garbage); Err then says why.
func (c *Conn) Msgs() <-chan Msg { return c.msgs }

// Err is why Msgs closed; valid only after it closed.
func (c *Conn) Err() error { return c.err }

// Send writes one message.
func (c *Conn) Send(m Msg) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("upgrade: encoding %s: %w", m.Op, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.c.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("upgrade: sending %s: %w", m.Op, err)
	}
	return nil
}

// Recv waits for the next message until ctx ends.
func (c *Conn) Recv(ctx context.Context) (Msg, error) {
	select {
	case m, ok := <-c.msgs:
		if !ok {
			return Msg{}, c.err
		}
		return m, nil
	case <-ctx.Done():
		return Msg{}, ctx.Err()
	}
}

// Close closes the channel.
func (c *Conn) Close() error { return c.c.Close() }

// FromEnv returns the control channel of a process started by an upgrade,
// or nil if this process was not. It unsets EnvFD so that the process's own
// children never misread it.
func FromEnv(getenv func(string) string, unsetenv func(string) error) (*Conn, error) {
	v := getenv(EnvFD)
	if v == "" {
		return nil, nil
	}
	if err := unsetenv(EnvFD); err != nil {
		return nil, fmt.Errorf("upgrade: unset %s: %w", EnvFD, err)
	}
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("upgrade: invalid %s=%q", EnvFD, v)
	}
	syscall.CloseOnExec(fd)
	f := os.NewFile(uintptr(fd), "upgrade-control")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("upgrade: control descriptor %d: %w", fd, err)
	}
	return newConn(c), nil
}
