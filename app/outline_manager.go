package app

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
	"github.com/usipipo/usipipo/vpn/outline"
)

// OutlineManager is the node seen through Outline Manager's API
// (outline.Manager), so a seller can run the node from the Outline Manager
// app. Every call is an operation of this service layer, audited as the
// actor "outline-manager".
//
// The mapping:
//   - the app lists and manages every Outline key of the node that is not
//     revoked, whoever owns it (the seller's view of the node);
//   - keys it creates are operator grants owned by one dedicated user, made
//     on first use (no Telegram id, first name "Outline Manager");
//   - deleting a key revokes it; a key's data limit is its data cap
//     (model.Limits.DataCap); the server-wide default limit is given to the
//     keys the app creates afterwards;
//   - the server name, id, creation time, default limit and the hostname
//     the app shows in access URLs live in one setting, "outline_manager";
//   - every key is served on --ss-listen, so the port for new keys can only
//     be that port;
//   - transfer is what each key moved through this node in the last 30
//     days (the node's usage series).
type OutlineManager struct {
	s       *Service
	version string
	mu      sync.Mutex // serialises the dedicated user's creation
}

// ActorOutlineManager is the audit actor of the Outline Manager API.
const ActorOutlineManager Actor = "outline-manager"

const settingOutlineManager = "outline_manager"

type managerState struct {
	UserID       string  `json:"user_id,omitempty"`
	ServerID     string  `json:"server_id"`
	Name         string  `json:"name"`
	CreatedMs    int64   `json:"created_ms"`
	Hostname     string  `json:"hostname,omitempty"`
	DefaultLimit *uint64 `json:"default_limit,omitempty"`
}

// OutlineManager returns the Outline Manager view of the service; version
// is what the app shows as the server's version.
func (s *Service) OutlineManager(version string) *OutlineManager {
	return &OutlineManager{s: s, version: version}
}

var _ outline.Manager = (*OutlineManager)(nil)

// state reads the setting, making it on first use.
func (m *OutlineManager) state(ctx context.Context) (managerState, error) {
	st, err := m.s.st.Setting(settingOutlineManager)
	if err == nil {
		var ms managerState
		if err := json.Unmarshal(st.Value, &ms); err != nil {
			return managerState{}, fmt.Errorf("outline manager setting: %w", err)
		}
		return ms, nil
	}
	if !errors.Is(err, model.ErrNotFound) {
		return managerState{}, err
	}
	id := make([]byte, 16)
	if _, err := io.ReadFull(m.s.rand, id); err != nil {
		return managerState{}, fmt.Errorf("outline server id: %w", err)
	}
	ms := managerState{ServerID: hex.EncodeToString(id), Name: "uSipipo " + m.s.node, CreatedMs: m.s.now().UnixMilli()}
	return ms, m.save(ctx, ms)
}

func (m *OutlineManager) save(ctx context.Context, ms managerState) error {
	b, err := json.Marshal(ms)
	if err != nil {
		return err
	}
	return m.s.do(ctx, m.s.meta(ActorOutlineManager), store.PutSetting{Name: settingOutlineManager, Value: b}, "")
}

// update changes the setting under the lock.
func (m *OutlineManager) update(ctx context.Context, fn func(*managerState)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ms, err := m.state(ctx)
	if err != nil {
		return err
	}
	fn(&ms)
	return m.save(ctx, ms)
}

// Server implements outline.Manager.
func (m *OutlineManager) Server(ctx context.Context) (outline.ServerInfo, error) {
	m.mu.Lock()
	ms, err := m.state(ctx)
	m.mu.Unlock()
	if err != nil {
		return outline.ServerInfo{}, err
	}
	host := ms.Hostname
	if host == "" {
		host = m.s.host()
	}
	return outline.ServerInfo{Name: ms.Name, ServerID: ms.ServerID, Created: time.UnixMilli(ms.CreatedMs).UTC(), Version: m.version,
		DefaultDataLimit: ms.DefaultLimit, Port: m.s.ends.SSPort, Hostname: host}, nil
}

// RenameServer implements outline.Manager.
func (m *OutlineManager) RenameServer(ctx context.Context, name string) error {
	if name == "" || len(name) > 100 {
		return fmt.Errorf("server name must be 1-100 bytes: %w", outline.ErrInvalid)
	}
	return m.update(ctx, func(ms *managerState) { ms.Name = name })
}

// SetHostname implements outline.Manager: the host the app shows in access
// URLs. Users' own configurations keep pointing at --public-host.
func (m *OutlineManager) SetHostname(ctx context.Context, host string) error {
	if len(host) > 253 {
		return fmt.Errorf("hostname too long: %w", outline.ErrInvalid)
	}
	return m.update(ctx, func(ms *managerState) { ms.Hostname = host })
}

// SetPortForNewKeys implements outline.Manager: this node serves every key
// on --ss-listen, so only that port is accepted.
func (m *OutlineManager) SetPortForNewKeys(_ context.Context, port int) error {
	if port != m.s.ends.SSPort {
		return fmt.Errorf("this node serves every key on port %d (--ss-listen): %w", m.s.ends.SSPort, outline.ErrInvalid)
	}
	return nil
}

// SetDefaultDataLimit implements outline.Manager.
func (m *OutlineManager) SetDefaultDataLimit(ctx context.Context, bytes *uint64) error {
	return m.update(ctx, func(ms *managerState) { ms.DefaultLimit = bytes })
}

// managed converts an Outline key of the store.
func (m *OutlineManager) managed(k *model.Key) (outline.ManagedKey, error) {
	plain, err := m.s.open(recKey, k.ID, k.Version, k.Secret)
	if err != nil {
		return outline.ManagedKey{}, err
	}
	sec, err := outline.ParseSecret(plain)
	if err != nil {
		return outline.ManagedKey{}, err
	}
	mk := outline.ManagedKey{ID: k.ID, Name: k.Name, Secret: sec, Port: m.s.ends.SSPort}
	if k.Limits.DataCap > 0 {
		c := k.Limits.DataCap
		mk.DataLimit = &c
	}
	return mk, nil
}

// Keys implements outline.Manager.
func (m *OutlineManager) Keys(ctx context.Context) ([]outline.ManagedKey, error) {
	var out []outline.ManagedKey
	err := m.eachKey(func(k *model.Key) error {
		mk, err := m.managed(k)
		if err == nil {
			out = append(out, mk)
		}
		return err
	})
	return out, err
}

// eachKey calls fn for every Outline key that is not revoked.
func (m *OutlineManager) eachKey(fn func(*model.Key) error) error {
	pg := store.Page{Limit: store.MaxLimit}
	for {
		ks, next, err := m.s.st.Keys(store.KeyFilter{}, pg)
		if err != nil {
			return err
		}
		for i := range ks {
			if ks[i].Type == model.Outline && ks[i].Status != model.KeyRevoked {
				if err := fn(&ks[i]); err != nil {
					return err
				}
			}
		}
		if next == "" {
			return nil
		}
		pg.After = next
	}
}

// key loads an Outline key the app may see; anything else is not found.
func (m *OutlineManager) key(id string) (*model.Key, error) {
	if !model.ValidID(id) {
		return nil, outline.ErrNotFound
	}
	k, err := m.s.st.Key(id)
	if errors.Is(err, model.ErrNotFound) || (err == nil && (k.Type != model.Outline || k.Status == model.KeyRevoked)) {
		return nil, outline.ErrNotFound
	}
	return k, err
}

// Key implements outline.Manager.
func (m *OutlineManager) Key(_ context.Context, id string) (outline.ManagedKey, error) {
	k, err := m.key(id)
	if err != nil {
		return outline.ManagedKey{}, err
	}
	return m.managed(k)
}

// owner is the dedicated user of keys the app creates, made on first use.
func (m *OutlineManager) owner(ctx context.Context) (string, *uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ms, err := m.state(ctx)
	if err != nil {
		return "", nil, err
	}
	if ms.UserID != "" {
		return ms.UserID, ms.DefaultLimit, nil
	}
	u, err := m.s.RegisterUser(ctx, ActorOutlineManager, NewUser{FirstName: "Outline Manager"})
	if err != nil {
		return "", nil, fmt.Errorf("creating the Outline Manager user: %w", err)
	}
	ms.UserID = u.ID
	return u.ID, ms.DefaultLimit, m.save(ctx, ms)
}

// CreateKey implements outline.Manager: an operator grant to the dedicated
// user, with the app's method and password when it gives them.
func (m *OutlineManager) CreateKey(ctx context.Context, nk outline.NewManagedKey) (outline.ManagedKey, error) {
	return m.createKey(ctx, "", nk)
}

// CreateKeyWithID implements outline.KeyCreatorWithID (PUT
// /access-keys/{id}): CreateKey under the caller's id, which must be of the
// node's own form (model.ValidID); an id any record of a key holds already,
// revoked or of another type too, is a conflict.
func (m *OutlineManager) CreateKeyWithID(ctx context.Context, id string, nk outline.NewManagedKey) (outline.ManagedKey, error) {
	if !model.ValidID(id) {
		return outline.ManagedKey{}, fmt.Errorf("id %q is not one of this node's ids (%d characters of lower-case Crockford base32): %w",
			id, model.IDLen, outline.ErrInvalid)
	}
	if _, err := m.s.st.Key(id); err == nil {
		return outline.ManagedKey{}, fmt.Errorf("access key %s exists: %w", id, outline.ErrConflict)
	} else if !errors.Is(err, model.ErrNotFound) {
		return outline.ManagedKey{}, err
	}
	k, err := m.createKey(ctx, id, nk)
	if errors.Is(err, model.ErrExists) { // taken between the check and the write
		return outline.ManagedKey{}, fmt.Errorf("access key %s exists: %w", id, outline.ErrConflict)
	}
	return k, err
}

// createKey is CreateKey under id, or a new id when id is empty.
func (m *OutlineManager) createKey(ctx context.Context, id string, nk outline.NewManagedKey) (outline.ManagedKey, error) {
	if nk.Port != 0 && nk.Port != m.s.ends.SSPort {
		return outline.ManagedKey{}, fmt.Errorf("this node serves every key on port %d: %w", m.s.ends.SSPort, outline.ErrInvalid)
	}
	if len(nk.Name) > 64 || len(nk.Password) > 128 {
		return outline.ManagedKey{}, fmt.Errorf("name or password too long: %w", outline.ErrInvalid)
	}
	userID, defLimit, err := m.owner(ctx)
	if err != nil {
		return outline.ManagedKey{}, err
	}
	limit := nk.DataLimit
	if limit == nil {
		limit = defLimit
	}
	at := m.s.now().UTC()
	if id == "" {
		if id, err = m.s.newID(at); err != nil {
			return outline.ManagedKey{}, err
		}
	}
	sec, err := outline.NewSecret(m.s.rand)
	if err != nil {
		return outline.ManagedKey{}, err
	}
	if nk.Method != "" {
		sec.Method = nk.Method
	}
	if nk.Password != "" {
		sec.Password = nk.Password
	}
	cmd := store.CreateKey{ID: id, UserID: userID, Type: model.Outline, Name: nk.Name, Node: m.s.node, Grant: store.ByAdmin}
	if cmd.Name == "" {
		cmd.Name = "Key"
	}
	if limit != nil {
		cmd.Limits.DataCap = *limit
	}
	plain, err := sec.Marshal()
	if err != nil {
		return outline.ManagedKey{}, err
	}
	if cmd.Secret, err = m.s.seal(recKey, id, plain); err != nil {
		return outline.ManagedKey{}, err
	}
	if cmd.Dynamic, cmd.DynHash, err = m.s.newDynamicToken(id); err != nil {
		return outline.ManagedKey{}, err
	}
	if err := m.s.do(ctx, store.Meta{At: at, Actor: string(ActorOutlineManager)}, cmd, userID); err != nil {
		return outline.ManagedKey{}, err
	}
	return m.Key(ctx, id)
}

// DeleteKey implements outline.Manager: the key is revoked.
func (m *OutlineManager) DeleteKey(ctx context.Context, id string) error {
	k, err := m.key(id)
	if err != nil {
		return err
	}
	return m.s.SetKeyStatus(ctx, ActorOutlineManager, k.ID, model.KeyRevoked, "deleted in Outline Manager")
}

// RenameKey implements outline.Manager. Outline allows an empty name; a
// key here always has one, so "" names it by its protocol.
func (m *OutlineManager) RenameKey(ctx context.Context, id, name string) error {
	k, err := m.key(id)
	if err != nil {
		return err
	}
	if name == "" {
		name = string(model.Outline)
	}
	if err := m.s.RenameKey(ctx, ActorOutlineManager, k.ID, name); err != nil {
		if errors.Is(err, model.ErrInvalid) {
			return fmt.Errorf("%w: %w", outline.ErrInvalid, err)
		}
		return err
	}
	return nil
}

// SetKeyDataLimit implements outline.Manager: the key's data cap (nil: none).
func (m *OutlineManager) SetKeyDataLimit(ctx context.Context, id string, bytes *uint64) error {
	k, err := m.key(id)
	if err != nil {
		return err
	}
	l := k.Limits
	l.DataCap = 0
	if bytes != nil {
		l.DataCap = *bytes
	}
	return m.s.do(ctx, m.s.meta(ActorOutlineManager), store.UpdateKey{KeyID: k.ID, Limits: &l}, k.UserID)
}

// transferWindow is the period Outline Manager's transfer figures cover.
const transferWindow = 30 * 24 * time.Hour

// Transfer implements outline.Manager: bytes each key moved through this
// node in the last 30 days, from the node's usage series (hourly buckets,
// daily ones after two weeks, so the window's start is rounded to a day).
func (m *OutlineManager) Transfer(context.Context) (map[string]uint64, error) {
	out := map[string]uint64{}
	since := m.s.now().Add(-transferWindow).UTC().Truncate(24 * time.Hour)
	err := m.eachKey(func(k *model.Key) error {
		pts, err := m.s.st.UsageSeries(k.ID)
		if err != nil {
			return err
		}
		var n uint64
		for _, p := range pts {
			if !p.At.Before(since) {
				n += p.Rx + p.Tx
			}
		}
		out[k.ID] = n
		return nil
	})
	return out, err
}
