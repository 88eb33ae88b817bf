package bot

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/usipipo/usipipo/store"
)

// convState is where a user is in a multi-step flow. It is node-local
// telemetry (store.Conversations), written when a step changes, so a flow
// survives a restart; it expires after convTTL.
type convState struct {
	Flow    string            `json:"flow"`
	Step    string            `json:"step,omitempty"`
	Data    map[string]string `json:"data,omitempty"`
	Expires time.Time         `json:"expires"`
}

const convTTL = 30 * time.Minute

func convKey(tg int64) string { return "c/" + strconv.FormatInt(tg, 10) }

// loadState returns the user's live flow, nil when none.
func (b *Bot) loadState(tg int64) (*convState, error) {
	raw, err := b.app.Store().GetTelemetry(store.Conversations, convKey(tg))
	if err != nil || raw == nil {
		return nil, err
	}
	var s convState
	if err := json.Unmarshal(raw, &s); err != nil || b.now().After(s.Expires) {
		return nil, nil // unreadable or stale: as if none
	}
	return &s, nil
}

// saveState starts or advances the user's flow.
func (b *Bot) saveState(tg int64, s *convState) error {
	s.Expires = b.now().Add(convTTL)
	raw, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := b.app.Store().PutTelemetry(store.Conversations, map[string][]byte{convKey(tg): raw}); err != nil {
		return fmt.Errorf("saving conversation: %w", err)
	}
	return nil
}

// clearState ends the user's flow.
func (b *Bot) clearState(tg int64) error {
	return b.app.Store().PutTelemetry(store.Conversations, map[string][]byte{convKey(tg): nil})
}
