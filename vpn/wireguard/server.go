package wireguard

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/store/model"
	"github.com/usipipo/usipipo/vpn/wireguard/netstack"
)

// Server is the WireGuard data plane: a wireguard-go device over either a
// userspace gVisor stack whose forwarders re-dial every peer flow through
// the egress dialer (ModeNetstack), or a kernel TUN interface behind the
// node's firewall rules (ModeTUN). It implements plane.Plane.
type Server struct {
	o        Options
	epoch    string
	gw4, gw6 netip.Addr
	public   string           // the server's base64 public key
	tdev     *netstack.Device // netstack mode
	kern     *kernelPlane     // tun mode
	dev      *device.Device
	log      *slog.Logger
	m        *serverMetrics

	// mu guards peers, byKey and the device's peer configuration; the
	// forwarders read byAddr without it.
	mu     sync.Mutex
	peers  map[string]*peer // by credential id
	byKey  map[string]*peer // by hex public key
	byAddr atomic.Pointer[map[netip.Addr]*live]
	recent map[string]lastSeen // endpoints of removed peers, by hex key
	greet  []string            // hex keys to send a handshake once added
	kick   chan struct{}       // enforce now: a budget ran out

	// Parked peers (lazy.go): the keys the bind's knock looks for.
	parkedKeys atomic.Pointer[map[[32]byte]struct{}]
	inits      *initiations
	sieve      *sieve
	greeted    greetings // handshakes the server starts with re-added peers (resume.go)
	crossed    crossings // where the device sent initiations (crossing.go)

	// fmu guards fclosed; fwg counts flow goroutines.
	fmu     sync.Mutex
	fclosed bool
	fwg     sync.WaitGroup

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

var _ plane.Plane = (*Server)(nil)

// New starts a server on o.Conn. Close stops it.
func New(o Options) (*Server, error) {
	if err := o.valid(); err != nil {
		return nil, err
	}
	o.defaults()
	pub, err := PublicKey(o.PrivateKey)
	if err != nil {
		return nil, err
	}
	s := &Server{o: o, epoch: newEpoch(), gw4: gateway(o.PoolV4), gw6: gateway(o.PoolV6), public: pub,
		log: o.Logger, m: newServerMetrics(o.Metrics), peers: map[string]*peer{}, byKey: map[string]*peer{}, recent: map[string]lastSeen{}, kick: make(chan struct{}, 1)}
	s.byAddr.Store(&map[netip.Addr]*live{})
	if s.inits, err = newInitiations(o.PrivateKey); err != nil {
		return nil, fmt.Errorf("wireguard private key: %w", err)
	}
	s.sieve = newSieve(s.inits.pub, o.wakes)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.start(); err != nil {
		s.cancel()
		s.sieve.close()
		return nil, err
	}
	s.wg.Add(1)
	go s.loop()
	s.log.Info("wireguard_started", "mode", o.Mode.String(), "iface", s.ifaceName(), "listen", o.Conn.LocalAddr().String(), "gateway4", s.gw4.String(), "gateway6", s.gw6.String())
	return s, nil
}

func (s *Server) start() error {
	tdev, err := s.newTUN()
	if err != nil {
		return err
	}
	bind, err := newSocketBind(s.o.Conn)
	if err != nil {
		tdev.Close()
		s.closeKernel()
		return err
	}
	bind.knock = s.knock
	bind.initiating = func(dst netip.AddrPort) bool { return s.crossed.send(dst, time.Now()) }
	bind.answering = s.crossed.answered
	s.dev = device.NewDevice(tdev, bind, s.deviceLogger())
	if err := s.dev.IpcSet("private_key=" + hex.EncodeToString(s.o.PrivateKey) + "\n"); err != nil {
		s.dev.Close()
		s.closeKernel()
		return fmt.Errorf("configuring wireguard device: %w", err)
	}
	if err := s.dev.Up(); err != nil {
		s.dev.Close()
		s.closeKernel()
		return fmt.Errorf("starting wireguard device: %w", err)
	}
	return nil
}

// newTUN is the device's packet side: a kernel interface or the userspace
// stack with its forwarders.
func (s *Server) newTUN() (tun.Device, error) {
	if s.o.Mode == ModeTUN {
		return s.startKernel()
	}
	tdev, err := netstack.New([]netip.Addr{s.gw4, s.gw6}, s.o.MTU)
	if err != nil {
		return nil, fmt.Errorf("wireguard netstack: %w", err)
	}
	s.tdev = tdev
	s.attachForwarders()
	return tdev, nil
}

// closeKernel undoes tun mode's host changes (firewall, sysctls, DNS).
func (s *Server) closeKernel() {
	if s.kern != nil {
		s.kern.close(s)
	}
}

func (s *Server) ifaceName() string {
	if s.o.Mode == ModeTUN {
		return s.o.Iface
	}
	return ""
}

// kickEnforce asks the loop for an enforcement pass now; it never blocks.
func (s *Server) kickEnforce() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Mode is the mode the server runs in.
func (s *Server) Mode() Mode { return s.o.Mode }

// deviceLogger sends wireguard-go's own chatter to debug level.
func (s *Server) deviceLogger() *device.Logger {
	return &device.Logger{
		Verbosef: func(string, ...any) {},
		Errorf: func(f string, a ...any) {
			s.log.Debug("wireguard_device", "error", fmt.Sprintf(f, a...))
		},
	}
}

func newEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Name implements plane.Plane.
func (s *Server) Name() string { return "wireguard" }

// Types implements plane.Plane.
func (s *Server) Types() []model.KeyType { return []model.KeyType{model.WireGuard} }

// PublicKey is the server's base64 public key, for client configs.
func (s *Server) PublicKey() string { return s.public }

// Epoch is the counters' epoch: new for every Server.
func (s *Server) Epoch() string { return s.epoch }

// Close stops the device and every forwarded flow and waits for them. It
// does not close Options.Conn.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.wg.Wait()
		s.mu.Lock()
		for _, p := range s.peers {
			p.live.closeFlows(true)
		}
		s.mu.Unlock()
		// The device (and its stack) goes first: a handshake the TCP
		// forwarder is completing ends only with the stack.
		s.dev.Close()
		s.closeKernel()
		s.stopFlows()
		s.sieve.close()
	})
	return nil
}
