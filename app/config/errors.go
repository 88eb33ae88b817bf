package config

import (
	"errors"
	"fmt"
)

// Error reports one bad setting: which, its value, and where it came from.
// Parse and Validate return it (wrapped in nothing) for every bad value.
type Error struct {
	Setting string // flag name without dashes, e.g. "http"
	Value   string // the offending value; "[redacted]" for a secret
	Source  string // "command line", "USIPIPO_HTTP", "FILE:LINE" or "default"
	Err     error  // what is wrong with it
}

func (e *Error) Error() string {
	return fmt.Sprintf("config: --%s %q (from %s): %v", e.Setting, e.Value, e.Source, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// itemError is a check's verdict on one value of a repeatable setting, so
// that the Error shows that value rather than the whole list.
type itemError struct {
	value string
	err   error
}

func (e *itemError) Error() string { return e.err.Error() }
func (e *itemError) Unwrap() error { return e.err }

var errDuplicateDC = errors.New("DC index given twice")

// settingError describes err, found by checking s's current value in c.
func (c *Config) settingError(s *setting, err error) *Error {
	e := &Error{Setting: s.name, Source: c.Source(s.name), Err: err}
	var item *itemError
	if errors.As(err, &item) {
		e.Value, e.Err = item.value, item.err
	} else {
		e.Value = joinValues(s.show(c))
	}
	return e
}
