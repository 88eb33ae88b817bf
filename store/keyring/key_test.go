package keyring

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
)

func TestGenerateKey(t *testing.T) {
	a, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenerateKey(nil)
	if a.Equal(b) || a.IsZero() {
		t.Fatal("two random keys are equal or zero")
	}
	if !testKey(t, 1).Equal(testKey(t, 1)) {
		t.Fatal("same seed, different keys")
	}
	_, err = GenerateKey(bytes.NewReader(make([]byte, 31)))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short reader: %v", err)
	}
	_, err = GenerateKey(errReader{errors.New("boom")})
	if err == nil {
		t.Fatal("failing reader accepted")
	}
}

func TestKeyRedacted(t *testing.T) {
	var k Key
	for i := range k {
		k[i] = 0xab
	}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "key", k)
	for _, s := range []string{
		fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %x %X %s %q %d", k, k, k, k, k, k, k, k),
		fmt.Sprintf("%v", struct{ K Key }{k}), fmt.Sprintf("%+v", &struct{ K Key }{k}),
		logged.String(),
	} {
		if !strings.Contains(s, "redacted") || strings.Contains(strings.ToLower(s), "abab") ||
			strings.Contains(s, "171") || strings.Contains(s, "\xab") {
			t.Errorf("key leaks: %s", s)
		}
	}
}
