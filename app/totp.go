package app

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// TOTP enrolment, recovery codes and the failed-login trail shared by the
// panel and the API.
//
// Enrolment is two calls: BeginTOTP makes a seed and its otpauth:// QR code
// without storing anything, the caller keeps the seed (the panel in its
// server-side session) and shows the code; ConfirmTOTP stores the seed only
// once the authenticator app proved it has it by producing a valid code.

// Enrolment parameters.
const (
	totpSeedBytes     = 20 // RFC 4226's recommended 160 bits
	RecoveryCodeCount = 10
	recoveryCodeChars = 16 // base32: 80 bits, so an unsalted SHA-256 is enough
)

// ErrWrongCode is returned by ConfirmTOTP for a code that does not match
// the new seed.
var ErrWrongCode = fmt.Errorf("the code does not match the new seed: %w", model.ErrInvalid)

// TOTPEnrolment is a new, not yet active, TOTP seed for one login.
type TOTPEnrolment struct {
	Seed   []byte // keep server-side until ConfirmTOTP
	Secret string // base32, for typing into an authenticator app
	URI    string // otpauth://totp/…
	QR     []byte // PNG of URI
}

// BeginTOTP makes a TOTP seed for username and its otpauth:// URI and QR
// code. Nothing is stored: the login keeps its current factor until
// ConfirmTOTP.
func (s *Service) BeginTOTP(ctx context.Context, username string) (*TOTPEnrolment, error) {
	if _, err := s.st.Admin(username); err != nil {
		return nil, fmt.Errorf("admin %q: %w", username, err)
	}
	seed := make([]byte, totpSeedBytes)
	if _, err := io.ReadFull(s.rand, seed); err != nil {
		return nil, fmt.Errorf("making a TOTP seed: %w", err)
	}
	secret := TOTPSeedText(seed)
	issuer := "usipipo " + s.node
	q := url.Values{"secret": {secret}, "issuer": {issuer}, "algorithm": {"SHA1"}, "digits": {"6"}, "period": {"30"}}
	uri := (&url.URL{Scheme: "otpauth", Host: "totp", Path: "/" + issuer + ":" + username, RawQuery: q.Encode()}).String()
	png, err := qrcode.Encode(uri, qrcode.Medium, 320)
	if err != nil {
		return nil, fmt.Errorf("rendering the enrolment QR code: %w", err)
	}
	return &TOTPEnrolment{Seed: seed, Secret: secret, URI: uri, QR: png}, nil
}

// ConfirmTOTP activates seed as username's second factor if code is a
// current code of it, replacing any earlier seed, and returns new recovery
// codes (shown once; only their hashes are stored).
func (s *Service) ConfirmTOTP(ctx context.Context, a Actor, username string, seed []byte, code string) ([]string, error) {
	if len(seed) != totpSeedBytes {
		return nil, fmt.Errorf("TOTP seed of %d bytes: %w", len(seed), model.ErrInvalid)
	}
	if !ValidTOTP(seed, strings.TrimSpace(code), s.now()) {
		return nil, ErrWrongCode
	}
	sealed, err := s.seal(recAdminTOTP, username, seed)
	if err != nil {
		return nil, err
	}
	codes := make([]string, RecoveryCodeCount)
	hashes := make([]string, RecoveryCodeCount)
	for i := range codes {
		if codes[i], err = s.newRecoveryCode(); err != nil {
			return nil, err
		}
		hashes[i] = recoveryHash(codes[i])
	}
	if err := s.do(ctx, s.meta(a), store.SetAdminTOTP{Username: username, TOTP: sealed, Recovery: hashes}, ""); err != nil {
		return nil, err
	}
	return codes, nil
}

// TOTPStatus reports whether username has a second factor and how many
// recovery codes are left.
func (s *Service) TOTPStatus(ctx context.Context, username string) (enrolled bool, recoveryLeft int, err error) {
	adm, err := s.st.Admin(username)
	if err != nil {
		return false, 0, fmt.Errorf("admin %q: %w", username, err)
	}
	return len(adm.TOTP) > 0, len(adm.Recovery), nil
}

// RemoveTOTP turns username's second factor off (for the CLI, when the
// authenticator is lost and no recovery code is left).
func (s *Service) RemoveTOTP(ctx context.Context, a Actor, username string) error {
	return s.do(ctx, s.meta(a), store.SetAdminTOTP{Username: username}, "")
}

// LoginAdmin is CheckAdminLogin that also takes one of the login's
// recovery codes in place of the TOTP code; a recovery code that lets
// someone in is spent, and so is a TOTP code: the same code is refused
// for as long as it stays valid, on every channel (panel and API).
func (s *Service) LoginAdmin(ctx context.Context, a Actor, username, password, code string) (*model.Admin, error) {
	adm, err := s.CheckAdminLogin(ctx, username, password, code)
	if err == nil {
		if !s.freshTOTP(username, code) {
			return nil, ErrSecondFactor // a replayed code: right password, second factor refused
		}
		return adm, nil
	}
	if !errors.Is(err, ErrSecondFactor) || !looksLikeRecoveryCode(code) {
		return adm, err
	}
	use := store.UseRecoveryCode{Username: username, Hash: recoveryHash(code)}
	if derr := s.do(ctx, s.meta(a), use, ""); derr != nil {
		if errors.Is(derr, model.ErrNotFound) {
			return nil, ErrSecondFactor
		}
		return nil, derr
	}
	return s.CheckAdminPassword(ctx, username, password)
}

// Login channels for RecordFailedLogin.
const (
	LoginViaPanel = "panel"
	LoginViaAPI   = "api"
)

// RecordFailedLogin writes a failed login to the audit trail (via is
// LoginViaPanel or LoginViaAPI). The username is cut to 64 bytes; the
// caller slows repeated failures down before calling.
func (s *Service) RecordFailedLogin(ctx context.Context, via, username, ip string, secondFactor bool) error {
	cmd := store.RecordLoginFailure{Via: via, Username: cut(username, 64), IP: cut(ip, 64), SecondFactor: secondFactor}
	return s.do(ctx, s.meta(Actor(via)), cmd, "")
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// newRecoveryCode is 16 base32 characters in groups of four.
func (s *Service) newRecoveryCode() (string, error) {
	b := make([]byte, 10)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return "", fmt.Errorf("making a recovery code: %w", err)
	}
	t := strings.ToLower(base32.StdEncoding.EncodeToString(b))[:recoveryCodeChars]
	return t[0:4] + "-" + t[4:8] + "-" + t[8:12] + "-" + t[12:16], nil
}

// normalRecoveryCode drops separators and case, so a code is accepted as
// typed from the printed list or not.
func normalRecoveryCode(code string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(code) {
		if r != '-' && r != ' ' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func looksLikeRecoveryCode(code string) bool {
	n := normalRecoveryCode(code)
	if len(n) != recoveryCodeChars {
		return false
	}
	_, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(n))
	return err == nil
}

func recoveryHash(code string) string {
	h := sha256.Sum256([]byte(normalRecoveryCode(code)))
	return hex.EncodeToString(h[:])
}
