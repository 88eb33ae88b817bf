package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/usipipo/usipipo/store"
)

// trialGuardLabel separates the trial guard's key from every other use of
// the data key.
const trialGuardLabel = "usipipo/trial-guard/v1"

// trialGuard is the keyed hash under which an erased account's used trials
// are kept: HMAC-SHA256 of the Telegram id under a key derived from the data
// key. A plain hash of a Telegram id would be reversed by trying the few
// billion ids there are; without the data key this names no one. 0 (no
// Telegram account) has no guard.
func (s *Service) trialGuard(telegramID int64) string {
	if telegramID == 0 {
		return ""
	}
	kdf := hmac.New(sha256.New, s.dataKey[:])
	kdf.Write([]byte(trialGuardLabel))
	mac := hmac.New(sha256.New, kdf.Sum(nil))
	mac.Write([]byte(strconv.FormatInt(telegramID, 10)))
	return hex.EncodeToString(mac.Sum(nil))
}

// eraseCommand is the erasure of a user, keeping the trials they used under
// their trial guard so that registering again gives no fresh trials.
func (s *Service) eraseCommand(userID string) (store.EraseUser, error) {
	u, err := s.st.User(userID)
	if err != nil {
		return store.EraseUser{}, fmt.Errorf("user %s: %w", userID, err)
	}
	return store.EraseUser{UserID: userID, TrialGuard: s.trialGuard(u.TelegramID)}, nil
}

// TrialsToday is how many free trials the node granted today (UTC), against
// the policy's TrialsPerDay.
func (s *Service) TrialsToday(ctx context.Context) (int, error) {
	n, err := s.st.TrialsToday(s.now())
	return int(n), err
}
