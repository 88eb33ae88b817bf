package app

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/cache"
	"github.com/usipipo/usipipo/store/keyring"
	"github.com/usipipo/usipipo/store/model"
)

// Endpoints are what client configurations and links point at.
type Endpoints struct {
	PublicHost  string   // --public-host
	WGPort      int      // from --wg-listen
	WGPublicKey string   // the node's WireGuard public key
	WGDNS       []string // tunnel DNS servers
	SSPort      int      // from --ss-listen
	MTProtoPort int      // from --mtproto-listen
	CloakDomain string   // FakeTLS domain, by default PublicHost
	PublicPort  int      // of --public-listen, for ssconf:// URLs; 0 = off
}

// Options configure a Service. Store and DataKey are required.
type Options struct {
	Store    *store.Store
	DataKey  keyring.Key
	Cache    *cache.Cache // nil: no cache
	Node     string
	Logger   *slog.Logger
	Now      func() time.Time
	Rand     io.Reader
	Ends     Endpoints
	WGPool4  netip.Prefix
	WGPool6  netip.Prefix
	AdminIDs []int64 // Telegram ids that are superadmins by configuration
}

// Service is the node's service layer. It is safe for concurrent use.
type Service struct {
	st      *store.Store
	dataKey keyring.Key
	cache   *cache.Cache
	node    string
	log     *slog.Logger
	now     func() time.Time
	rand    io.Reader
	ends    Endpoints
	pool4   netip.Prefix
	pool6   netip.Prefix
	admins  map[int64]bool
	free    atomic.Pointer[freeSource] // set by SetFreeProxySource (freeproxies.go)
	spent   *spentTOTP                 // TOTP codes that already let someone in (totp_replay.go)
}

// New returns a Service.
func New(o Options) (*Service, error) {
	if o.Store == nil {
		return nil, fmt.Errorf("app: a store is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Node == "" {
		o.Node = "node"
	}
	if !o.WGPool4.IsValid() {
		o.WGPool4 = netip.MustParsePrefix("10.66.0.0/16")
	}
	if !o.WGPool6.IsValid() {
		o.WGPool6 = netip.MustParsePrefix("fd66::/64")
	}
	if o.Ends.CloakDomain == "" {
		o.Ends.CloakDomain = o.Ends.PublicHost
	}
	admins := map[int64]bool{}
	for _, id := range o.AdminIDs {
		admins[id] = true
	}
	return &Service{st: o.Store, dataKey: o.DataKey, cache: o.Cache, node: o.Node, log: o.Logger, now: o.Now,
		rand: o.Rand, ends: o.Ends, pool4: o.WGPool4, pool6: o.WGPool6, admins: admins, spent: newSpentTOTP()}, nil
}

// Store is the service's store, for adapters' read-only views.
func (s *Service) Store() *store.Store { return s.st }

// Node is this node's name.
func (s *Service) Node() string { return s.node }

// Actor names who asks for an operation; it goes into the audit trail.
type Actor string

// Actors used by the adapters.
const (
	ActorCLI    Actor = "cli"
	ActorSystem Actor = "system"
)

// APIActor, BotActor and PanelActor name an API key, a Telegram user and a
// panel login.
func APIActor(keyID string) Actor  { return Actor("api:" + keyID) }
func BotActor(tg int64) Actor      { return Actor(fmt.Sprintf("bot:%d", tg)) }
func PanelActor(name string) Actor { return Actor("admin:" + name) }

func (s *Service) meta(a Actor) store.Meta {
	return store.Meta{At: s.now().UTC(), Actor: string(a)}
}

func (s *Service) newID(at time.Time) (string, error) { return model.NewID(at, s.rand) }

// do applies one command and logs it with the seed's fields.
func (s *Service) do(ctx context.Context, m store.Meta, cmd store.Command, userID string) error {
	start := time.Now()
	err := s.st.Do(ctx, m, cmd)
	lvl := slog.LevelInfo
	if err != nil {
		lvl = slog.LevelWarn
	}
	attrs := []slog.Attr{slog.String("user_id", userID), slog.String("actor", m.Actor),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000)}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	s.log.LogAttrs(ctx, lvl, cmd.Kind(), attrs...)
	return err
}

// seal seals secret material of a record under the data key.
func (s *Service) seal(recordType, id string, plaintext []byte) (model.Sealed, error) {
	b, err := keyring.Seal(s.dataKey, s.rand, recordType, id, plaintext)
	if err != nil {
		return nil, fmt.Errorf("sealing %s secret: %w", recordType, err)
	}
	return b, nil
}

// open opens a record's sealed secret, through the cache when the record
// version is known.
func (s *Service) open(recordType, id string, version uint64, sealed model.Sealed) ([]byte, error) {
	k := cache.Key{Kind: recordType + "-secret", ID: id, Version: version}
	return cache.GetOrCompute(context.Background(), s.cache, k, cache.Configs, func() ([]byte, int64, error) {
		b, err := keyring.Open(s.dataKey, recordType, id, sealed)
		if err != nil {
			return nil, 0, fmt.Errorf("opening %s %s secret: %w", recordType, id, err)
		}
		return b, int64(len(b)) + 64, nil
	})
}

// CloakDomain is the domain FakeTLS MTProto secrets name.
func (s *Service) CloakDomain() string { return s.cloak() }
