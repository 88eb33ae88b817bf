package node

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/app/logging"
	"github.com/usipipo/usipipo/web/api"
	"github.com/usipipo/usipipo/web/public"
)

// publicSide is the node's public HTTPS listener (--public-listen) and the
// Outline Manager API (--outline-api), both optional.
type publicSide struct {
	ln   net.Listener // claimed with the core, before the service, so its port is known
	srv  *public.Server
	mgmt *mgmtServer
	// webhook is Telegram's webhook handler, set by startPayments with
	// --bot-webhook (it runs first); nil: no /tg/webhook.
	webhook fiber.Handler
}

// claimPublic takes the --public-listen socket from the registry early:
// ssconf:// URLs need its port (also when it is 0) and the MTProto proxy
// splices failed handshakes to it. The socket closes with the core; the
// server on it stops with the serving parts, before that.
func (n *Node) claimPublic(stops *[]func(context.Context)) error {
	if n.Config.PublicListen == "" {
		return nil
	}
	ln, err := n.Listen.Listen("tcp", n.Config.PublicListen)
	if err != nil {
		return fmt.Errorf("--public-listen %s: %w", n.Config.PublicListen, err)
	}
	n.pub.ln = ln
	*stops = append(*stops, func(context.Context) { ln.Close() })
	return nil
}

// PublicAddr is the bound address of --public-listen (nil when off).
func (n *Node) PublicAddr() net.Addr {
	if n.pub.ln == nil {
		return nil
	}
	return n.pub.ln.Addr()
}

// publicPort is the public listener's port for ssconf:// URLs; 0 when off.
func (n *Node) publicPort() int {
	if n.pub.ln == nil {
		return 0
	}
	return n.pub.ln.Addr().(*net.TCPAddr).Port
}

// publicFront is where the MTProto proxy splices a handshake that is not
// one of its clients': our own HTTPS site, over loopback when the listener
// takes every address (Go's ":port" and "[::]:port" take IPv4 too). ""
// when the public listener is off.
func (n *Node) publicFront() string {
	if n.pub.ln == nil {
		return ""
	}
	a := n.pub.ln.Addr().(*net.TCPAddr)
	ip := a.IP
	if ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(a.Port))
}

// startPublic serves the public site on the claimed socket: dynamic keys,
// the QvaPay callback, Telegram's webhook with --bot-webhook, and /api when
// --public-api is set. Outline keys made
// before dynamic keys existed get their tokens first.
func (n *Node) startPublic(ctx context.Context, stops *[]func(context.Context)) error {
	if n.pub.ln == nil {
		return nil
	}
	cfg := n.Config
	log := logging.ForService(n.Log, "public")
	if given, err := n.Service.BackfillDynamicTokens(ctx); err != nil {
		return fmt.Errorf("giving Outline keys their dynamic tokens: %w", err)
	} else if given > 0 {
		log.Info("dynamic_tokens_backfilled", "details", fmt.Sprintf("%d Outline keys got an ssconf:// token", given))
	}
	o := public.Options{Logger: log, Dynamic: n.Service, Host: cfg.PublicHost,
		Cert: public.CertFiles{Cert: cfg.TLSCert, Key: cfg.TLSKey},
		ACME: public.ACME{CacheDir: filepath.Join(cfg.Data, "acme")}}
	if n.Pay != nil {
		o.QvaPay = n.Pay.QvaPayCallback()
	}
	o.Webhook = n.pub.webhook
	if cfg.PublicAPI {
		o.API = func(app *fiber.App) error {
			key, err := api.SigningKeyFrom(n.sec.dataKey[:])
			if err != nil {
				return err
			}
			return api.Mount(app, api.Options{Service: n.Service, SigningKey: key, Logger: logging.ForService(n.Log, "api"),
				Metrics: n.Metrics, Status: n.Status, Pay: n.Pay, Broadcaster: n.broadcaster(), Shared: n.apiShared, Logins: n.logins})
		}
	}
	srv, err := public.New(o)
	if err != nil {
		return fmt.Errorf("--public-listen: %w", err)
	}
	n.pub.srv = srv
	registerCertExpiry(n.Metrics, certPublic, srv.CertNotAfter)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(n.pub.ln); err != nil {
			log.Error("public_listener_stopped", "error", err.Error())
		}
	}()
	*stops = append(*stops, func(sctx context.Context) { srv.Shutdown(sctx); <-done })
	log.Info("public_listener_ready", "details", n.pub.ln.Addr().String())
	return nil
}
