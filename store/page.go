package store

import (
	"bytes"
	"encoding/base64"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/usipipo/usipipo/store/model"
)

// Page asks for one page of a list. After is the opaque cursor returned with
// the previous page ("" for the first); Limit is clamped to [1, MaxLimit].
type Page struct {
	After string `json:"after,omitempty"`
	Limit int    `json:"limit,omitempty"`
}

// Page sizes.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

func (p Page) limit() int {
	switch {
	case p.Limit <= 0:
		return DefaultLimit
	case p.Limit > MaxLimit:
		return MaxLimit
	}
	return p.Limit
}

func (p Page) cursor() ([]byte, error) {
	if p.After == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(p.After)
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("cursor: %w", model.ErrInvalid)
	}
	return b, nil
}

// scan walks bucket keys that start with prefix, after the page's cursor, in
// ascending or descending order, handing each to visit until it has taken
// limit items. It returns the cursor of the next page, "" at the end. Keys of
// a page are never revisited, and a key inserted behind the cursor is not
// seen, so concurrent writes never make a list repeat a record.
func scan(b *bolt.Bucket, prefix []byte, p Page, desc bool, visit func(k, v []byte) (bool, error)) (string, error) {
	after, err := p.cursor()
	if err != nil {
		return "", err
	}
	if after != nil && !bytes.HasPrefix(after, prefix) {
		return "", fmt.Errorf("cursor from another list: %w", model.ErrInvalid)
	}
	c := b.Cursor()
	taken, limit := 0, p.limit()
	var prev []byte
	for k, v := first(c, prefix, after, desc); k != nil && bytes.HasPrefix(k, prefix); k, v = step(c, desc) {
		if taken == limit {
			return base64.RawURLEncoding.EncodeToString(prev), nil
		}
		ok, err := visit(k, v)
		if err != nil {
			return "", err
		}
		if ok {
			taken++
		}
		prev = k
	}
	return "", nil
}

func step(c *bolt.Cursor, desc bool) ([]byte, []byte) {
	if desc {
		return c.Prev()
	}
	return c.Next()
}

func first(c *bolt.Cursor, prefix, after []byte, desc bool) ([]byte, []byte) {
	if !desc {
		if after == nil {
			return c.Seek(prefix)
		}
		k, v := c.Seek(after)
		if bytes.Equal(k, after) {
			return c.Next()
		}
		return k, v
	}
	from := after
	if from == nil {
		from = prefixEnd(prefix)
	}
	if from == nil {
		return c.Last()
	}
	if k, _ := c.Seek(from); k == nil {
		return c.Last()
	}
	return c.Prev()
}

// prefixEnd is the first key after every key with the prefix.
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // every key: Seek(nil) lands on the first, Last handles it
}
