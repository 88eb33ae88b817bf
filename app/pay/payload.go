package pay

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/usipipo/usipipo/store/model"
)

// An invoice payload is "<payment id>.<tag>": the tag is 16 bytes of
// HMAC-SHA256 under a key derived from the data key over the provider and
// the payment id, so only this node (and its cluster) can issue one. It fits
// Telegram's 128-byte limit with room to spare.
const tagLen = 16

func (s *Service) payloadTag(provider, paymentID string) string {
	m := hmac.New(sha256.New, s.payloadKey)
	m.Write([]byte(provider + "\x00" + paymentID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:tagLen])
}

// Payload is the invoice payload naming a payment of a provider.
func (s *Service) Payload(provider, paymentID string) string {
	return paymentID + "." + s.payloadTag(provider, paymentID)
}

// ParsePayload returns the payment id a payload names, or ErrBadPayload when
// this node did not issue it for that provider.
func (s *Service) ParsePayload(provider, payload string) (string, error) {
	id, tag, ok := strings.Cut(payload, ".")
	if !ok || !model.ValidID(id) || len(tag) != base64.RawURLEncoding.EncodedLen(tagLen) {
		return "", fmt.Errorf("payload of %d bytes: %w", len(payload), ErrBadPayload)
	}
	if !hmac.Equal([]byte(tag), []byte(s.payloadTag(provider, id))) {
		return "", fmt.Errorf("payload for %s: %w", id, ErrBadPayload)
	}
	return id, nil
}
