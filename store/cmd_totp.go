package store

import (
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/usipipo/usipipo/store/model"
)

// MaxRecoveryCodes bounds the recovery codes one login holds.
const MaxRecoveryCodes = 20

// SetAdminTOTP enrols a login's TOTP second factor (a seed sealed before
// apply) with the SHA-256 hashes of its recovery codes, replacing any
// earlier enrolment. An empty TOTP removes the second factor and its codes.
type SetAdminTOTP struct {
	Username string       `json:"username"`
	TOTP     model.Sealed `json:"totp,omitempty"`
	Recovery []string     `json:"recovery,omitempty"` // hex SHA-256 of each code
}

// Kind implements Command.
func (SetAdminTOTP) Kind() string { return "admin.totp/1" }

func (c SetAdminTOTP) redacted() any {
	return struct {
		Username      string `json:"username"`
		Enrolled      bool   `json:"enrolled"`
		RecoveryCodes int    `json:"recovery_codes"`
	}{c.Username, len(c.TOTP) > 0, len(c.Recovery)}
}

func (c SetAdminTOTP) plan(v *view, m Meta) (mutation, error) {
	if len(c.TOTP) == 0 && len(c.Recovery) > 0 {
		return nil, fmt.Errorf("recovery codes without a TOTP seed: %w", model.ErrInvalid)
	}
	if len(c.Recovery) > MaxRecoveryCodes {
		return nil, fmt.Errorf("%d recovery codes, at most %d: %w", len(c.Recovery), MaxRecoveryCodes, model.ErrInvalid)
	}
	for _, h := range c.Recovery {
		if !validHash(h) {
			return nil, fmt.Errorf("recovery code hash %q: %w", h, model.ErrInvalid)
		}
	}
	a, err := getByID(v, admins, c.Username)
	if err != nil {
		return nil, fmt.Errorf("admin %q: %w", c.Username, err)
	}
	return func(w *writer) error {
		a.TOTP, a.Recovery, a.Updated = c.TOTP, slices.Clone(c.Recovery), m.At
		return put(w, admins, a)
	}, nil
}

// UseRecoveryCode spends one of a login's recovery codes, named by its
// hash: a code works once.
type UseRecoveryCode struct {
	Username string `json:"username"`
	Hash     string `json:"hash"`
}

// Kind implements Command.
func (UseRecoveryCode) Kind() string { return "admin.recovery_use/1" }

func (c UseRecoveryCode) redacted() any {
	c.Hash = "[redacted]"
	return c
}

func (c UseRecoveryCode) plan(v *view, m Meta) (mutation, error) {
	a, err := getByID(v, admins, c.Username)
	if err != nil {
		return nil, fmt.Errorf("admin %q: %w", c.Username, err)
	}
	i := slices.Index(a.Recovery, c.Hash)
	if i < 0 || !validHash(c.Hash) {
		return nil, fmt.Errorf("recovery code of %q: %w", c.Username, model.ErrNotFound)
	}
	return func(w *writer) error {
		a.Recovery, a.Updated = slices.Delete(slices.Clone(a.Recovery), i, i+1), m.At
		return put(w, admins, a)
	}, nil
}

// RecordLoginFailure notes a failed panel or API login in the audit trail;
// it changes nothing else. The caller slows repeated failures down, which
// bounds how many of these an attacker can write.
type RecordLoginFailure struct {
	Via          string `json:"via"` // "panel" or "api"
	Username     string `json:"username"`
	IP           string `json:"ip,omitempty"`
	SecondFactor bool   `json:"second_factor,omitempty"` // the password was right, the code was not
}

// Kind implements Command.
func (RecordLoginFailure) Kind() string { return "auth.login_failed/1" }

func (c RecordLoginFailure) plan(v *view, m Meta) (mutation, error) {
	if c.Via != "panel" && c.Via != "api" {
		return nil, fmt.Errorf("login channel %q: %w", c.Via, model.ErrInvalid)
	}
	if len(c.Username) > 64 || len(c.IP) > 64 {
		return nil, fmt.Errorf("username or address longer than 64 bytes: %w", model.ErrInvalid)
	}
	return func(*writer) error { return nil }, nil
}

func validHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil
}
