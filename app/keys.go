package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
	"github.com/usipipo/usipipo/vpn/outline"
	"github.com/usipipo/usipipo/vpn/wireguard"
)

// KeyRequest asks for a new WireGuard or Outline key.
type KeyRequest struct {
	UserID string
	Type   model.KeyType
	Name   string
	Trial  bool
	// Admin issues the key outside the user's plan, with Limits as given
	// (an operator's grant, from the CLI or the panel).
	Admin  bool
	Limits model.Limits
	// Once, when set, issues at most one key per idempotency key: a repeat
	// returns the first key.
	Once string
}

const recKey = "key"

// CreateKey issues a key: within the user's plan quota, as the user's one
// trial of that protocol, or as an operator's grant.
func (s *Service) CreateKey(ctx context.Context, a Actor, r KeyRequest) (*model.Key, error) {
	if r.Type != model.WireGuard && r.Type != model.Outline {
		return nil, fmt.Errorf("key type %q: %w", r.Type, model.ErrInvalid)
	}
	if len(r.Name) > 64 {
		return nil, fmt.Errorf("key name longer than 64: %w", model.ErrInvalid)
	}
	m := s.meta(a)
	id, err := s.newID(m.At)
	if err != nil {
		return nil, err
	}
	cmd := store.CreateKey{ID: id, UserID: r.UserID, Type: r.Type, Name: r.Name, Node: s.node, Grant: store.ByPlan, Once: r.Once}
	if cmd.Name == "" {
		cmd.Name = string(r.Type)
	}
	switch {
	case r.Admin:
		cmd.Grant, cmd.Limits = store.ByAdmin, r.Limits
	case r.Trial:
		pol := s.Policy()
		if cmd.Limits, err = pol.trialLimits(r.Type, m.At); err != nil {
			return nil, err
		}
		cmd.Grant, cmd.TrialBudget = store.ByTrial, pol.TrialsPerDay
	}
	if err := s.keyMaterial(&cmd); err != nil {
		return nil, err
	}
	if cmd.Type == model.Outline { // its ssconf:// token; a rotation keeps it
		if cmd.Dynamic, cmd.DynHash, err = s.newDynamicToken(cmd.ID); err != nil {
			return nil, err
		}
	}
	if cmd.Type == model.WireGuard {
		if cmd.AddrV4, cmd.AddrV6, err = s.allocate(); err != nil {
			return nil, err
		}
	}
	// Addresses are chosen here and re-checked by apply; a collision with a
	// concurrent creation retries with another address.
	for attempt := 0; ; attempt++ {
		err = s.do(ctx, m, cmd, r.UserID)
		if err == nil || !errors.Is(err, model.ErrExists) || cmd.Type != model.WireGuard || attempt == 8 {
			break
		}
		if cmd.AddrV4, cmd.AddrV6, err = s.allocate(); err != nil {
			return nil, err
		}
	}
	if err != nil {
		return nil, err
	}
	if id, err = s.onceRef(r.Once, id); err != nil {
		return nil, err
	}
	return s.Key(ctx, id)
}

// keyMaterial generates and seals a key's secret (and its WireGuard public
// key). Tunnel addresses are not part of it: a rotation keeps them.
func (s *Service) keyMaterial(cmd *store.CreateKey) error {
	var plain []byte
	switch cmd.Type {
	case model.WireGuard:
		sec, pub, err := wireguard.NewSecret(s.rand)
		if err != nil {
			return err
		}
		if plain, err = sec.Marshal(); err != nil {
			return err
		}
		cmd.Public = pub
	case model.Outline:
		sec, err := outline.NewSecret(s.rand)
		if err != nil {
			return err
		}
		if plain, err = sec.Marshal(); err != nil {
			return err
		}
	}
	sealed, err := s.seal(recKey, cmd.ID, plain)
	if err != nil {
		return err
	}
	cmd.Secret = sealed
	return nil
}

// Key returns a key without its secret.
func (s *Service) Key(ctx context.Context, id string) (*model.Key, error) {
	if !model.ValidID(id) {
		return nil, fmt.Errorf("key id %q: %w", id, model.ErrInvalid)
	}
	k, err := s.st.Key(id)
	if err != nil {
		return nil, err
	}
	k.Secret = nil
	return k, nil
}

// Keys lists keys, without secrets.
func (s *Service) Keys(ctx context.Context, f store.KeyFilter, p store.Page) ([]model.Key, string, error) {
	ks, next, err := s.st.Keys(f, p)
	for i := range ks {
		ks[i].Secret = nil
	}
	return ks, next, err
}

// SetKeyStatus suspends, restores or revokes a key. The data planes stop
// serving it at the next reconcile, within seconds.
func (s *Service) SetKeyStatus(ctx context.Context, a Actor, id string, st model.KeyStatus, reason string) error {
	k, err := s.Key(ctx, id)
	if err != nil {
		return err
	}
	return s.do(ctx, s.meta(a), store.SetKeyStatus{KeyID: id, Status: st, Reason: reason}, k.UserID)
}

// RenameKey names a key.
func (s *Service) RenameKey(ctx context.Context, a Actor, id, name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("key name must be 1-64 characters: %w", model.ErrInvalid)
	}
	k, err := s.Key(ctx, id)
	if err != nil {
		return err
	}
	return s.do(ctx, s.meta(a), store.UpdateKey{KeyID: id, Name: name}, k.UserID)
}

// RotateKey replaces a key's secret (a new WireGuard keypair with the same
// addresses, or a new Outline password); the old one stops working when the
// data plane is handed the new set.
func (s *Service) RotateKey(ctx context.Context, a Actor, id string) (*model.Key, error) {
	return s.RotateKeyOnce(ctx, a, "", id)
}

// RotateKeyOnce is RotateKey applied at most once per idempotency key (none
// when empty): a repeat keeps the secret the first rotation gave.
func (s *Service) RotateKeyOnce(ctx context.Context, a Actor, key, id string) (*model.Key, error) {
	k, err := s.Key(ctx, id)
	if err != nil {
		return nil, err
	}
	cmd := store.CreateKey{ID: k.ID, Type: k.Type}
	if err := s.keyMaterial(&cmd); err != nil {
		return nil, err
	}
	if err := s.do(ctx, s.meta(a), store.UpdateKey{KeyID: id, Secret: cmd.Secret, Public: cmd.Public, Once: key}, k.UserID); err != nil {
		return nil, err
	}
	return s.Key(ctx, id)
}
