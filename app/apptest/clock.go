package apptest

import (
	"time"

	"github.com/usipipo/usipipo/internal/testclock"
)

// Clock is a clock a test sets and moves by hand (testclock.Clock).
type Clock = testclock.Clock

// NewClock returns a Clock reading start.
func NewClock(start time.Time) *Clock { return testclock.New(start) }
