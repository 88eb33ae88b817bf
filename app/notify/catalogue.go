package notify

import (
	"embed"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// The texts live in texts/<lang>.json so translators edit data, not code.
// Spanish is the default (the original audience); English is the other.
//
//go:embed texts/*.json
var textFiles embed.FS

// Languages the catalogue speaks; the first is the default.
func languages() []string { return []string{"es", "en"} }

// catalogue maps a language to its texts by message id.
type catalogue map[string]map[string]string

// loadCatalogue reads the embedded texts and checks that every language has
// the same message ids, so a missing translation fails at start, not when a
// user would have received it.
func loadCatalogue() (catalogue, error) {
	c := catalogue{}
	for _, lang := range languages() {
		b, err := textFiles.ReadFile("texts/" + lang + ".json")
		if err != nil {
			return nil, fmt.Errorf("notify texts %s: %w", lang, err)
		}
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("notify texts %s: %w", lang, err)
		}
		c[lang] = m
	}
	langs := languages()
	want := slices.Sorted(maps.Keys(c[langs[0]]))
	for _, lang := range langs[1:] {
		if got := slices.Sorted(maps.Keys(c[lang])); !slices.Equal(got, want) {
			return nil, fmt.Errorf("notify texts: %s has ids %v, %s has %v", langs[0], want, lang, got)
		}
	}
	return c, nil
}

// lang maps a user's language to one the catalogue speaks.
func (c catalogue) lang(l string) string {
	if _, ok := c[l]; ok {
		return l
	}
	return languages()[0]
}

// text renders message id in lang with {name} placeholders replaced from
// args (name, value pairs).
func (c catalogue) text(lang, id string, args ...string) string {
	t, ok := c[c.lang(lang)][id]
	if !ok {
		return id // unreachable for ids in the files: loadCatalogue checked them
	}
	if len(args) == 0 {
		return t
	}
	pairs := make([]string, 0, len(args))
	for i := 0; i+1 < len(args); i += 2 {
		pairs = append(pairs, "{"+args[i]+"}", args[i+1])
	}
	return strings.NewReplacer(pairs...).Replace(t)
}
