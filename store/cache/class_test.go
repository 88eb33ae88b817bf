package cache

import (
	"testing"
	"time"
)

func TestClassTTL(t *testing.T) {
	tests := []struct {
		class Class
		want  time.Duration
		name  string
	}{
		{Users, 15 * time.Minute, "users"},
		{Configs, time.Hour, "configs"},
		{Static, 24 * time.Hour, "static"},
		{Class(99), 15 * time.Minute, "unknown"},
		{Class(-1), 15 * time.Minute, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.class.ttl(); got != tt.want {
				t.Fatalf("%v.ttl() = %v, want %v", tt.class, got, tt.want)
			}
			if got := tt.class.String(); got != tt.name {
				t.Fatalf("String() = %q, want %q", got, tt.name)
			}
		})
	}
}

// TestSetUsesClassTTL checks the TTL ristretto actually holds for an entry
// (ristretto reads the wall clock itself, so the class's TTL is checked
// within a minute's slack instead of by waiting for expiry).
func TestSetUsesClassTTL(t *testing.T) {
	c := newTestCache(t, Options{})
	for _, class := range []Class{Users, Configs, Static} {
		t.Run(class.String(), func(t *testing.T) {
			k := Key{Kind: "ttl", ID: class.String(), Version: 1}
			Set(c, k, "v", 1, class)
			c.Wait()
			got, ok := c.rc.GetTTL(k.hash())
			if !ok {
				t.Fatal("entry not stored")
			}
			want := class.ttl()
			if got <= want-time.Minute || got > want {
				t.Fatalf("stored TTL %v, want in (%v, %v]", got, want-time.Minute, want)
			}
		})
	}
}
