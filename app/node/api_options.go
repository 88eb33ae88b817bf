package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/usipipo/usipipo/app/config"
	"github.com/usipipo/usipipo/app/notify"
	"github.com/usipipo/usipipo/web/api"
)

// apiBroadcaster adapts the notifier to the REST API's Broadcaster.
type apiBroadcaster struct{ n *notify.Notifier }

// broadcaster is the API's Broadcaster: nil (the API answers 503) when
// the notifier does not run.
func (n *Node) broadcaster() api.Broadcaster {
	if n.Notify == nil {
		return nil
	}
	return apiBroadcaster{n.Notify}
}

func (b apiBroadcaster) Broadcast(ctx context.Context, actor string, seg api.BroadcastSegment, text string) (string, error) {
	id, err := b.n.Broadcast(ctx, actor, notify.Segment{Language: seg.Language, ActiveKey: seg.ActiveOnly, PlanID: seg.PlanID}, text)
	if errors.Is(err, notify.ErrNoTelegram) {
		return "", fmt.Errorf("%w: %w", api.ErrBroadcastsOff, err)
	}
	return id, err
}

func (b apiBroadcaster) BroadcastStatus(ctx context.Context, id string) (*api.BroadcastStatus, error) {
	s, err := b.n.Status(id)
	if err != nil {
		return nil, err
	}
	return &api.BroadcastStatus{ID: s.ID, Actor: s.Actor, State: s.State, Text: s.Text, Created: s.Created,
		Finished: s.Finished, Sent: s.Sent, Blocked: s.Blocked, Failed: s.Failed, InFlight: s.InFlight,
		Segment: api.BroadcastSegment{Language: s.Segment.Language, ActiveOnly: s.Segment.ActiveKey, PlanID: s.Segment.PlanID}}, nil
}

// useStoredBotToken takes the bot token set through the API (settings)
// when --bot-token is not given; the flag wins. An unreadable stored token
// is logged and ignored: the node runs without a bot, as it would without
// the flag.
func (n *Node) useStoredBotToken() {
	if n.Config.BotToken != "" {
		return
	}
	tok, err := n.Service.StoredBotToken()
	if err != nil {
		n.Log.Warn("stored_bot_token_unreadable", "error", err.Error())
		return
	}
	if tok != "" {
		n.Config.BotToken = config.Secret(tok)
		n.Log.Info("bot_token_from_settings")
	}
}
