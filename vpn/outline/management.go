package outline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Errors a Manager returns for Outline's 400 and 409 answers (and
// ErrNotFound for 404).
var (
	ErrInvalid  = errors.New("outline: invalid argument")
	ErrConflict = errors.New("outline: conflict")
)

// ManagedKey is an access key as Outline Manager sees it.
type ManagedKey struct {
	ID        string
	Name      string
	Secret    Secret
	Port      int
	DataLimit *uint64 // bytes; nil for none
}

// ServerInfo is the node as Outline Manager sees it.
type ServerInfo struct {
	Name             string
	ServerID         string
	Created          time.Time
	Version          string
	DefaultDataLimit *uint64
	Port             int    // of new access keys
	Hostname         string // of access keys
}

// NewManagedKey is a create request; zero fields take the node's defaults.
type NewManagedKey struct {
	Name, Method, Password string
	Port                   int
	DataLimit              *uint64
}

// Manager is the service layer behind the Outline Manager API; every call
// is an admin action of the node's own service layer, audited there.
type Manager interface {
	Server(ctx context.Context) (ServerInfo, error)
	RenameServer(ctx context.Context, name string) error
	SetHostname(ctx context.Context, host string) error
	SetPortForNewKeys(ctx context.Context, port int) error
	SetDefaultDataLimit(ctx context.Context, bytes *uint64) error
	Keys(ctx context.Context) ([]ManagedKey, error)
	Key(ctx context.Context, id string) (ManagedKey, error)
	CreateKey(ctx context.Context, k NewManagedKey) (ManagedKey, error)
	DeleteKey(ctx context.Context, id string) error
	RenameKey(ctx context.Context, id, name string) error
	SetKeyDataLimit(ctx context.Context, id string, bytes *uint64) error
	// Transfer is bytes moved per key id over the last 30 days.
	Transfer(ctx context.Context) (map[string]uint64, error)
}

type limitJSON struct {
	Bytes *int64 `json:"bytes"`
}

type keyJSON struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Password  string     `json:"password"`
	Port      int        `json:"port"`
	Method    string     `json:"method"`
	AccessURL string     `json:"accessUrl"`
	DataLimit *limitJSON `json:"dataLimit,omitempty"`
}

type serverJSON struct {
	Name                  string     `json:"name"`
	ServerID              string     `json:"serverId"`
	MetricsEnabled        bool       `json:"metricsEnabled"`
	CreatedTimestampMs    int64      `json:"createdTimestampMs"`
	Version               string     `json:"version"`
	AccessKeyDataLimit    *limitJSON `json:"accessKeyDataLimit,omitempty"`
	PortForNewAccessKeys  int        `json:"portForNewAccessKeys"`
	HostnameForAccessKeys string     `json:"hostnameForAccessKeys"`
}

// managementAPI holds the one setting that lives only here: whether the
// Manager app may share metrics with its vendor, which this node never does
// (it only remembers the answer so the app stops asking).
type managementAPI struct {
	m       Manager
	metrics atomic.Bool
}

// MountManagement mounts Outline Manager's API on r, which the caller puts
// behind HTTPS and a secret path prefix, as Outline's own server does.
func MountManagement(r fiber.Router, m Manager) {
	a := &managementAPI{m: m}
	r.Get("/server", a.server)
	r.Put("/name", a.rename)
	r.Put("/server/hostname-for-access-keys", a.hostname)
	r.Put("/server/port-for-new-access-keys", a.port)
	r.Put("/server/access-key-data-limit", a.defaultLimit)
	r.Delete("/server/access-key-data-limit", a.defaultLimit)
	r.Put("/experimental/access-key-data-limit", a.defaultLimit)
	r.Delete("/experimental/access-key-data-limit", a.defaultLimit)
	r.Get("/metrics/enabled", a.metricsEnabled)
	r.Put("/metrics/enabled", a.setMetricsEnabled)
	r.Get("/metrics/transfer", a.transfer)
	r.Get("/access-keys", a.listKeys)
	r.Post("/access-keys", a.createKey)
	r.Put("/access-keys/:id", a.putKey)
	r.Get("/access-keys/:id", a.getKey)
	r.Delete("/access-keys/:id", a.deleteKey)
	r.Put("/access-keys/:id/name", a.renameKey)
	r.Put("/access-keys/:id/data-limit", a.keyLimit)
	r.Delete("/access-keys/:id/data-limit", a.keyLimit)
}

// fail answers err the way Outline's server does: {"code", "message"}.
func fail(c *fiber.Ctx, err error) error {
	status, code := fiber.StatusInternalServerError, "InternalServer"
	switch {
	case errors.Is(err, ErrNotFound):
		status, code = fiber.StatusNotFound, "NotFound"
	case errors.Is(err, ErrInvalid):
		status, code = fiber.StatusBadRequest, "InvalidArgument"
	case errors.Is(err, ErrConflict):
		status, code = fiber.StatusConflict, "Conflict"
	}
	msg := err.Error()
	if status == fiber.StatusInternalServerError {
		msg = "internal error" // never leak internals to the app
	}
	return c.Status(status).JSON(fiber.Map{"code": code, "message": msg})
}

func noContent(c *fiber.Ctx, err error) error {
	if err != nil {
		return fail(c, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// body decodes the JSON body into v; a malformed body is ErrInvalid.
func body(c *fiber.Ctx, v any) error {
	if err := json.Unmarshal(c.Body(), v); err != nil {
		return ErrInvalid
	}
	return nil
}

func toLimit(b *uint64) *limitJSON {
	if b == nil {
		return nil
	}
	n := int64(min(*b, math.MaxInt64))
	return &limitJSON{Bytes: &n}
}

// fromLimit reads {"limit": {"bytes": N}}: N must be a non-negative integer.
func fromLimit(c *fiber.Ctx) (*uint64, error) {
	var req struct {
		Limit *limitJSON `json:"limit"`
	}
	if err := body(c, &req); err != nil || req.Limit == nil || req.Limit.Bytes == nil || *req.Limit.Bytes < 0 {
		return nil, ErrInvalid
	}
	n := uint64(*req.Limit.Bytes)
	return &n, nil
}

func (a *managementAPI) server(c *fiber.Ctx) error {
	s, err := a.m.Server(c.UserContext())
	if err != nil {
		return fail(c, err)
	}
	return c.JSON(serverJSON{Name: s.Name, ServerID: s.ServerID, MetricsEnabled: a.metrics.Load(),
		CreatedTimestampMs: s.Created.UnixMilli(), Version: s.Version, AccessKeyDataLimit: toLimit(s.DefaultDataLimit),
		PortForNewAccessKeys: s.Port, HostnameForAccessKeys: s.Hostname})
}

// nameParam reads the "name" of a rename call: Outline Manager sends the
// server's as JSON but a key's form-encoded, and Outline's server (restify's
// body parser) takes either for both.
func nameParam(c *fiber.Ctx) (string, error) {
	if strings.HasPrefix(string(c.Request().Header.ContentType()), fiber.MIMEApplicationForm) {
		args := c.Request().PostArgs()
		if !args.Has("name") {
			return "", fmt.Errorf("parameter `name` is missing: %w", ErrInvalid)
		}
		return string(args.Peek("name")), nil // a copy: the request buffer is reused
	}
	var req struct {
		Name *string `json:"name"`
	}
	if err := body(c, &req); err != nil || req.Name == nil {
		return "", fmt.Errorf("parameter `name` is missing: %w", ErrInvalid)
	}
	return *req.Name, nil
}

func (a *managementAPI) rename(c *fiber.Ctx) error {
	name, err := nameParam(c)
	if err != nil {
		return fail(c, err)
	}
	return noContent(c, a.m.RenameServer(c.UserContext(), name))
}

func (a *managementAPI) hostname(c *fiber.Ctx) error {
	var req struct {
		Hostname string `json:"hostname"`
	}
	if err := body(c, &req); err != nil || req.Hostname == "" {
		return fail(c, ErrInvalid)
	}
	return noContent(c, a.m.SetHostname(c.UserContext(), req.Hostname))
}

func (a *managementAPI) port(c *fiber.Ctx) error {
	var req struct {
		Port json.Number `json:"port"`
	}
	if err := body(c, &req); err != nil {
		return fail(c, err)
	}
	p, err := strconv.Atoi(req.Port.String())
	if err != nil || p < 1 || p > 65535 {
		return fail(c, ErrInvalid)
	}
	return noContent(c, a.m.SetPortForNewKeys(c.UserContext(), p))
}

func (a *managementAPI) defaultLimit(c *fiber.Ctx) error {
	if c.Method() == fiber.MethodDelete {
		return noContent(c, a.m.SetDefaultDataLimit(c.UserContext(), nil))
	}
	l, err := fromLimit(c)
	if err != nil {
		return fail(c, err)
	}
	return noContent(c, a.m.SetDefaultDataLimit(c.UserContext(), l))
}

func (a *managementAPI) metricsEnabled(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"metricsEnabled": a.metrics.Load()})
}

func (a *managementAPI) setMetricsEnabled(c *fiber.Ctx) error {
	var req struct {
		MetricsEnabled *bool `json:"metricsEnabled"`
	}
	if err := body(c, &req); err != nil || req.MetricsEnabled == nil {
		return fail(c, ErrInvalid)
	}
	a.metrics.Store(*req.MetricsEnabled)
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *managementAPI) transfer(c *fiber.Ctx) error {
	t, err := a.m.Transfer(c.UserContext())
	if err != nil {
		return fail(c, err)
	}
	if t == nil {
		t = map[string]uint64{}
	}
	return c.JSON(fiber.Map{"bytesTransferredByUserId": t})
}
