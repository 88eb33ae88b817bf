package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/keyring"
	"github.com/usipipo/usipipo/store/model"
)

// Write-only secrets kept as settings: sealed under the data key (the
// audit trail and backups carry only the sealed blob) and never handed to
// an adapter for display — only whether they are set.

// Setting names of the write-only secrets. SettingQvaPay is the one app/pay
// writes with SetQvaPayCredentials.
const (
	SettingBotToken = "bot_token"
	SettingQvaPay   = "qvapay"
)

// SetBotToken stores the Telegram bot token, sealed. The node uses it at
// its next start when --bot-token is not given.
func (s *Service) SetBotToken(ctx context.Context, a Actor, token string) error {
	if !validBotToken(token) {
		return fmt.Errorf("not a Telegram bot token (want digits:letters, as @BotFather gives): %w", model.ErrInvalid)
	}
	sealed, err := s.seal("setting", SettingBotToken, []byte(token))
	if err != nil {
		return err
	}
	return s.do(ctx, s.meta(a), store.PutSetting{Name: SettingBotToken, Value: sealed}, "")
}

// StoredBotToken is the token SetBotToken stored; "" when none is.
func (s *Service) StoredBotToken() (string, error) {
	st, err := s.st.Setting(SettingBotToken)
	if errors.Is(err, model.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	b, err := keyring.Open(s.dataKey, "setting", SettingBotToken, st.Value)
	if err != nil {
		return "", fmt.Errorf("opening the stored bot token: %w", err)
	}
	return string(b), nil
}

// SecretIsSet reports whether a write-only secret setting holds a value.
func (s *Service) SecretIsSet(name string) (bool, error) {
	_, err := s.st.Setting(name)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, model.ErrNotFound):
		return false, nil
	}
	return false, err
}

func validBotToken(t string) bool {
	if len(t) > 128 {
		return false
	}
	id, key := "", ""
	for i := 0; i < len(t); i++ {
		if t[i] == ':' {
			id, key = t[:i], t[i+1:]
			break
		}
	}
	if id == "" || len(key) < 20 {
		return false
	}
	for _, r := range id {
		if r < '0' || r > '9' {
			return false
		}
	}
	for _, r := range key {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
