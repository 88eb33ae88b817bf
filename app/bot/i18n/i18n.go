// Package i18n holds the bot's message catalogues — Spanish (the default,
// the original audience's) and English — as embedded JSON files, and renders
// their texts. No text a user reads is written in a handler.
package i18n

import (
	"embed"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Languages the bot speaks; Default is used for any other Telegram language.
const (
	Spanish = "es"
	English = "en"
	Default = Spanish
)

//go:embed es.json en.json
var files embed.FS

// Catalogue is the set of message templates per language. Placeholders are
// written {name} and filled from the name/value pairs given to T.
type Catalogue struct {
	msgs map[string]map[string]string
}

// Load reads the embedded catalogues.
func Load() (*Catalogue, error) {
	c := &Catalogue{msgs: map[string]map[string]string{}}
	for _, lang := range []string{Spanish, English} {
		b, err := files.ReadFile(lang + ".json")
		if err != nil {
			return nil, fmt.Errorf("reading the %s catalogue: %w", lang, err)
		}
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("parsing the %s catalogue: %w", lang, err)
		}
		c.msgs[lang] = m
	}
	return c, nil
}

// Lang maps a Telegram language_code ("en-GB") to a catalogue language.
func Lang(code string) string {
	code = strings.ToLower(strings.TrimSpace(code))
	if i := strings.IndexAny(code, "-_"); i > 0 {
		code = code[:i]
	}
	if code == English {
		return English
	}
	return Default
}

// T renders message key in lang with kv name/value pairs. A key missing in
// lang falls back to the default language, then to the key itself (the
// catalogue test keeps both from happening).
func (c *Catalogue) T(lang, key string, kv ...any) string {
	s, ok := c.msgs[lang][key]
	if !ok {
		if s, ok = c.msgs[Default][key]; !ok {
			return key
		}
	}
	if len(kv) == 0 || !strings.Contains(s, "{") {
		return s
	}
	pairs := make([]string, 0, len(kv))
	for i := 0; i+1 < len(kv); i += 2 {
		pairs = append(pairs, "{"+fmt.Sprint(kv[i])+"}", fmt.Sprint(kv[i+1]))
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

// Has reports whether key exists in every language.
func (c *Catalogue) Has(key string) bool {
	for _, m := range c.msgs {
		if _, ok := m[key]; !ok {
			return false
		}
	}
	return true
}

// Keys lists the keys of one language, sorted.
func (c *Catalogue) Keys(lang string) []string {
	out := make([]string, 0, len(c.msgs[lang]))
	for k := range c.msgs[lang] {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var placeholder = regexp.MustCompile(`\{[a-z_]+\}`)

// Placeholders lists the placeholders a message uses, sorted.
func (c *Catalogue) Placeholders(lang, key string) []string {
	ps := placeholder.FindAllString(c.msgs[lang][key], -1)
	sort.Strings(ps)
	return ps
}
