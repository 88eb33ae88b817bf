package store

import (
	"fmt"

	"github.com/usipipo/usipipo/store/model"
)

// APIKeyBytes appends the stored bytes of an API key record to dst. A
// caller that keeps what it derived from the record (an authentication
// verdict) compares these bytes to know the record is unchanged — exactly,
// without decoding it on every request.
func (s *Store) APIKeyBytes(id string, dst []byte) ([]byte, error) {
	err := s.read(func(v *view) error {
		b := v.bucket(bAPIKeys).Get(str(id))
		if b == nil {
			return model.ErrNotFound
		}
		dst = append(dst, b...)
		return nil
	})
	if err != nil {
		return dst, fmt.Errorf("api key %s: %w", id, err)
	}
	return dst, nil
}

// UserBytes appends the stored bytes of a user record to dst (see
// APIKeyBytes); DecodeUser turns them into the record.
func (s *Store) UserBytes(id string, dst []byte) ([]byte, error) {
	err := s.read(func(v *view) error {
		b := v.bucket(bUsers).Get(str(id))
		if b == nil {
			return model.ErrNotFound
		}
		dst = append(dst, b...)
		return nil
	})
	if err != nil {
		return dst, fmt.Errorf("users %s: %w", id, err)
	}
	return dst, nil
}

// DecodeUser decodes a user record's stored bytes (from UserBytes).
func DecodeUser(raw []byte) (*model.User, error) {
	u := new(model.User)
	if err := decode(raw, u); err != nil {
		return nil, err
	}
	return u, nil
}
