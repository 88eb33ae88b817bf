package app

import (
	"context"
	"fmt"
	"strings"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// RevokePlan ends a user's subscription now (an operator's decision); subID
// empty revokes the user's current one. Its keys move to another current
// plan of the user or are suspended (see store.RevokeSubscription).
func (s *Service) RevokePlan(ctx context.Context, a Actor, userID, subID, reason string) (*model.Subscription, error) {
	if len(reason) > 200 {
		return nil, fmt.Errorf("reason longer than 200: %w", model.ErrInvalid)
	}
	subs, _, err := s.st.Subscriptions(userID, store.Page{Limit: store.MaxLimit})
	if err != nil {
		return nil, err
	}
	now := s.now()
	var target *model.Subscription
	for i := range subs {
		sb := &subs[i]
		if subID != "" && sb.ID == subID {
			target = sb
		}
		if subID == "" && sb.CurrentAt(now) && (target == nil || !sb.ExpiresAt.Before(target.ExpiresAt)) {
			target = sb
		}
	}
	if target == nil {
		return nil, fmt.Errorf("user %s has no such plan: %w", userID, model.ErrNotFound)
	}
	cmd := store.RevokeSubscription{UserID: userID, SubID: target.ID, Reason: strings.TrimSpace(reason)}
	if err := s.do(ctx, s.meta(a), cmd, userID); err != nil {
		return nil, err
	}
	target.Status = model.SubCancelled
	return target, nil
}
