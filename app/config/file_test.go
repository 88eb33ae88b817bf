package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestParseFile(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []entry
		err      string
	}{
		{"empty", "", nil, ""},
		{"comments and blanks", "# a\n\n   # b\n\t\n", nil, ""},
		{"basic", "http = 127.0.0.1:1\nwg-listen=:2", []entry{{"http", "127.0.0.1:1", 1}, {"wg-listen", ":2", 2}}, ""},
		{"blanks around", "  node   =   n1  \r\n", []entry{{"node", "n1", 1}}, ""},
		{"bom and crlf", "\ufeffnode = a\r\nnode = b\r\n", []entry{{"node", "a", 1}, {"node", "b", 2}}, ""},
		{"trailing comment", "http = :1 # api\nnode = x\t# tab", []entry{{"http", ":1", 1}, {"node", "x", 2}}, ""},
		{"hash inside value", "shadowmere-url = https://x/#frag", []entry{{"shadowmere-url", "https://x/#frag", 1}}, ""},
		{"empty value", "public-host =\npublic-host = # none", []entry{{"public-host", "", 1}, {"public-host", "", 2}}, ""},
		{"equals in value", "mtproto-dc = 2=1.2.3.4:443", []entry{{"mtproto-dc", "2=1.2.3.4:443", 1}}, ""},
		{"quoted", `bot-token = " a # b "  # c`, []entry{{"bot-token", " a # b ", 1}}, ""},
		{"quoted escapes", `node = "a\tb\"c"`, []entry{{"node", "a\tb\"c", 1}}, ""},
		{"no equals", "# x\nhttp 127.0.0.1:1", nil, "line 2: want name = value"},
		{"no name", "= x", nil, "line 1: want name = value"},
		{"space in name", "wg listen = x", nil, "line 1: want name = value"},
		{"unterminated quote", `node = "abc`, nil, "line 1: unterminated or malformed quoted value"},
		{"text after quote", `node = "a" b`, nil, "line 1: text after the quoted value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseFile([]byte(tc.in))
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestReadFileErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, body, want string }{
		{"unknown", "# c\nhttp = :1\nhtp = :2\n", `config: PATH:3: unknown setting "htp"`},
		{"flag dashes", "--http = :1\n", `config: PATH:1: unknown setting "--http"`},
		{"config in file", "config = other.conf\n", `config: PATH:1: "config" cannot be set in a settings file`},
		{"scalar twice", "http = :1\n\nhttp = :2\n", `config: PATH:3: "http" is already set at PATH:1`},
		{"syntax", "http\n", `config: PATH: line 1: want name = value`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".conf")
			os.WriteFile(path, []byte(tc.body), 0o600)
			_, err := Parse([]string{"--config", path}, nil)
			if want := strings.ReplaceAll(tc.want, "PATH", path); err == nil || err.Error() != want {
				t.Errorf("got %v\nwant %s", err, want)
			}
		})
	}
}

// FuzzParseFile: parseFile never panics, what it accepts is well formed,
// and writing its entries back out (values quoted) reads back the same.
func FuzzParseFile(f *testing.F) {
	for _, seed := range []string{
		"", "# c\n", "http = 127.0.0.1:8080\n", "a=b\r\nc = \"d # e\" # f\n", "\ufeffx = y",
		"egress-allow = 10.0.0.0/8\negress-allow = ::1\n", `bot-token = "\x00\u2028"`, "k = v # c\n k2 =\t#\n",
		"=", "a b = c", `n = "unterminated`, `n = "a" "b"`, "n = \xff\xfe",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parseFile(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "line ") {
				t.Fatalf("error %q does not name a line", err)
			}
			return
		}
		lines := strings.Count(string(data), "\n") + 1
		var out strings.Builder
		prev := 0
		for _, e := range entries {
			if !validName(e.name) || e.line <= prev || e.line > lines {
				t.Fatalf("bad entry %+v after line %d of %d", e, prev, lines)
			}
			if strings.ContainsAny(e.value, "\n") && !strings.Contains(string(data), `"`) {
				t.Fatalf("unquoted value %q spans lines", e.value)
			}
			prev = e.line
			out.WriteString(e.name + " = " + strconv.Quote(e.value) + " # again\n")
		}
		again, err := parseFile([]byte(out.String()))
		if err != nil {
			t.Fatalf("re-reading %q: %v", out.String(), err)
		}
		if len(again) != len(entries) {
			t.Fatalf("re-read %d entries, want %d", len(again), len(entries))
		}
		for i := range again {
			if again[i].name != entries[i].name || again[i].value != entries[i].value || again[i].line != i+1 {
				t.Fatalf("entry %d: re-read %+v, want %+v", i, again[i], entries[i])
			}
		}
	})
}
