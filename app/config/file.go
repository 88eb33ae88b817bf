package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// maxFileSize bounds a settings file; a real one is a few hundred bytes.
const maxFileSize = 1 << 20

// entry is one "name = value" line of a settings file.
type entry struct {
	name, value string
	line        int // 1-based
}

// syntaxError is a line parseFile cannot read.
type syntaxError struct {
	line int
	msg  string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

// parseFile reads a settings file: one "name = value" per line, blank lines
// and "#" comments ignored. A comment starts at a "#" that begins the value
// or follows a space or tab. A value is trimmed of surrounding blanks, or
// may be written as a Go double-quoted string to keep them, or a " #".
// parseFile knows no setting names; the caller judges them.
func parseFile(data []byte) ([]entry, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 BOM
	var entries []entry
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		if !ok || !validName(name) {
			return nil, &syntaxError{n, "want name = value"}
		}
		value, err := parseValue(strings.TrimLeft(rest, " \t"))
		if err != nil {
			return nil, &syntaxError{n, err.Error()}
		}
		entries = append(entries, entry{name: name, value: value, line: n})
	}
	return entries, nil
}

// parseValue reads what follows "name =", leading blanks removed.
func parseValue(v string) (string, error) {
	if strings.HasPrefix(v, `"`) {
		q, err := strconv.QuotedPrefix(v)
		if err != nil {
			return "", errors.New("unterminated or malformed quoted value")
		}
		if rest := strings.TrimLeft(v[len(q):], " \t"); rest != "" && rest[0] != '#' {
			return "", errors.New("text after the quoted value")
		}
		return strconv.Unquote(q)
	}
	if strings.HasPrefix(v, "#") {
		return "", nil
	}
	if i := strings.Index(v, " #"); i >= 0 {
		v = v[:i]
	}
	if i := strings.Index(v, "\t#"); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(v), nil
}

// validName accepts the characters of flag names (and a little more, so
// that a misspelt name is reported as unknown rather than as bad syntax).
func validName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if !isAlnum(r) && r != '-' && r != '_' && r != '.' {
			return false
		}
	}
	return true
}

// readFile reads the settings file at path into a layer. A file it cannot
// read is reported against source, where the path came from.
func readFile(path, source string) (layer, error) {
	data, err := os.ReadFile(path)
	if err == nil && len(data) > maxFileSize {
		err = fmt.Errorf("larger than %d bytes", maxFileSize)
	}
	if err != nil {
		return nil, &Error{Setting: configSetting, Value: path, Source: source, Err: err}
	}
	entries, err := parseFile(data)
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	l := layer{}
	for _, e := range entries {
		at := fmt.Sprintf("%s:%d", path, e.line)
		s := settingByName[e.name]
		switch {
		case e.name == configSetting:
			return nil, fmt.Errorf("config: %s: %q cannot be set in a settings file", at, e.name)
		case s == nil:
			return nil, fmt.Errorf("config: %s: unknown setting %q", at, e.name)
		case !s.repeatable && len(l[e.name]) > 0:
			return nil, fmt.Errorf("config: %s: %q is already set at %s", at, e.name, l[e.name][0].source)
		}
		l[e.name] = append(l[e.name], sourced{e.value, at})
	}
	return l, nil
}
