package store

import (
	"fmt"

	"github.com/usipipo/usipipo/store/model"
)

// bOnce maps an idempotency key to the id of what its command made or
// changed. A caller that may send the same command again (a Telegram update
// re-handled after a crash) names it with a key; the repeat then changes
// nothing and the caller reads the first result back through OnceRef.
var bOnce = []byte("once")

// maxOnceKey bounds a key so a caller cannot grow the bucket with large ones.
const maxOnceKey = 128

// once plans a command at most once per key: an empty key plans it as
// usual, a used key plans nothing (and succeeds), and a new key is recorded
// with ref in the same transaction as the command's effect.
func once(v *view, key, ref string, plan func() (mutation, error)) (mutation, error) {
	if key == "" {
		return plan()
	}
	if len(key) > maxOnceKey {
		return nil, fmt.Errorf("idempotency key longer than %d: %w", maxOnceKey, model.ErrInvalid)
	}
	if v.bucket(bOnce).Get(str(key)) != nil {
		return func(*writer) error { return nil }, nil
	}
	mut, err := plan()
	if err != nil {
		return nil, err
	}
	return func(w *writer) error {
		if err := mut(w); err != nil {
			return err
		}
		return w.tx.Bucket(bOnce).Put(str(key), str(ref))
	}, nil
}

// OnceRef returns the id recorded by the first command applied under key,
// and whether there was one.
func (s *Store) OnceRef(key string) (ref string, ok bool, err error) {
	err = s.read(func(v *view) error {
		if b := v.bucket(bOnce).Get(str(key)); b != nil {
			ref, ok = string(b), true
		}
		return nil
	})
	if err != nil {
		return "", false, fmt.Errorf("idempotency key: %w", err)
	}
	return ref, ok, nil
}
