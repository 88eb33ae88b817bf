package config

import (
	"fmt"
	"io"
	"log/slog"
	"strconv"
)

// redactedText stands in for a secret in every rendering.
const redactedText = "[redacted]"

// Secret is a string that is never rendered: fmt (every verb, %#v too),
// encoding/json, encoding.TextMarshaler users and log/slog all see
// "[redacted]" when it is set and "" when it is empty. Reveal gives the value.
type Secret string

// Reveal returns the secret's value, for the one place that needs it.
func (s Secret) Reveal() string { return string(s) }

// String returns "[redacted]", or "" for an empty secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redactedText
}

// Format renders the secret redacted for every fmt verb and flag; without
// it, verbs such as %d would print the value.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		io.WriteString(f, s.GoString())
		return
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), s.String())
}

// GoString renders the secret, redacted, as Go syntax.
func (s Secret) GoString() string { return "config.Secret(" + strconv.Quote(s.String()) + ")" }

// LogValue renders the secret redacted in log/slog records.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON renders the secret redacted as a JSON string.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }

// MarshalText renders the secret redacted, for encoders that use text.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
