package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/usipipo/usipipo/store"
)

// Everything that is not a sound backup is refused with a clear error, and
// nothing is left in the target directory.
func TestReadRefuses(t *testing.T) {
	st := newStore(t)
	addUsers(t, st, newIDs(4), 300) // enough for several 64 KiB chunks
	good, _ := writeBackup(t, st, newKey(t))
	var plainDB bytes.Buffer
	if _, err := st.Snapshot(&plainDB); err != nil {
		t.Fatal(err)
	}
	noise := make([]byte, 200_000)
	rand.Read(noise)
	const header = 89
	const chunk = 64<<10 + 16

	type tc struct {
		name    string
		in      []byte
		pass    string // "" means ReadWithPassKey (no scrypt run)
		want    error
		message string
	}
	cases := []tc{
		{"random bytes", noise, testPassphrase, ErrNotBackup, "not a usipipo backup"},
		{"empty file", nil, testPassphrase, ErrNotBackup, "not a usipipo backup"},
		{"plain bbolt file", plainDB.Bytes(), testPassphrase, ErrNotBackup, "not a usipipo backup"},
		{"wrong passphrase", good, "incorrect horse", ErrBadPassphrase, "wrong backup passphrase"},
		{"truncated in magic", good[:10], testPassphrase, ErrCorrupt, "truncated"},
		{"truncated with passphrase", good[:len(good)/2], testPassphrase, ErrCorrupt, "truncated"},
	}
	for _, n := range []int{header - 1, header, header + 1, header + 5000, header + chunk, header + chunk + 17,
		len(good) / 2, len(good) - 17, len(good) - 1} {
		cases = append(cases, tc{fmt.Sprintf("truncated at %d of %d", n, len(good)), good[:n], "", ErrCorrupt, "truncated"})
	}
	for _, off := range []int{header + 3, header + chunk + 100, len(good) - 5} {
		bad := bytes.Clone(good)
		bad[off] ^= 0x40
		cases = append(cases, tc{fmt.Sprintf("byte %d flipped", off), bad, "", ErrCorrupt, "authenticate"})
	}
	salt := bytes.Clone(good)
	salt[30] ^= 1
	cases = append(cases, tc{"salt flipped", salt, "", ErrBadPassphrase, "passphrase"})
	cases = append(cases, tc{"data after the end", append(bytes.Clone(good), 0), "", ErrCorrupt, "authenticate"})

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			var err error
			if c.pass == "" {
				_, _, err = ReadWithPassKey(context.Background(), bytes.NewReader(c.in), passKey(t), dir)
			} else {
				_, _, err = Read(context.Background(), bytes.NewReader(c.in), []byte(c.pass), dir)
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), c.message) {
				t.Errorf("error %q does not say %q", err, c.message)
			}
			assertEmpty(t, dir)
		})
	}
}

// Archives that decrypt fine but are not what Write makes are refused as
// corrupt (or unsupported, when made by a newer usipipo).
func TestReadRefusesContent(t *testing.T) {
	st := newStore(t)
	addUsers(t, st, newIDs(5), 20)
	good, _ := writeBackup(t, st, newKey(t))
	es := entries(t, good)
	if len(es) != 3 || es[0].name != entryManifest || es[1].name != entryDB || es[2].name != entrySHA256 {
		t.Fatalf("archive layout: %v", names(es))
	}
	manifest := func(edit func(m map[string]any)) []entry {
		var m map[string]any
		if err := json.Unmarshal(es[0].body, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return []entry{{entryManifest, b}, es[1], es[2]}
	}
	flipped := bytes.Clone(es[1].body)
	flipped[len(flipped)/2] ^= 1
	cases := []struct {
		name  string
		plain []byte
		want  error
	}{
		{"as written", archive(t, es, nil), nil},
		{"hash mismatch", archive(t, []entry{es[0], {entryDB, flipped}, es[2]}, nil), ErrCorrupt},
		{"no hash entry", archive(t, es[:2], nil), ErrCorrupt},
		{"entries reordered", archive(t, []entry{es[1], es[0], es[2]}, nil), ErrCorrupt},
		{"extra entry", archive(t, append(es[:3:3], entry{"x", []byte("y")}), nil), ErrCorrupt},
		{"trailing bytes", archive(t, es, []byte("garbage")), ErrCorrupt},
		{"not an archive", []byte("hello"), ErrCorrupt},
		{"empty archive", archive(t, nil, nil), ErrCorrupt},
		{"manifest not JSON", archive(t, []entry{{entryManifest, []byte("{")}, es[1], es[2]}, nil), ErrCorrupt},
		{"newer format", archive(t, manifest(func(m map[string]any) { m["format"] = 2 }), nil), ErrUnsupported},
		{"newer schema", archive(t, manifest(func(m map[string]any) { m["schema"] = store.SchemaVersion + 1 }), nil), ErrUnsupported},
		{"short data key", archive(t, manifest(func(m map[string]any) { m["data_key"] = "AAEC" }), nil), ErrCorrupt},
		{"size mismatch", archive(t, manifest(func(m map[string]any) { m["db_size"] = 4096 }), nil), ErrCorrupt},
		{"hash in manifest differs", archive(t, manifest(func(m map[string]any) {
			m["db_sha256"] = strings.Repeat("0", 64)
		}), nil), ErrCorrupt},
		{"garbage database", archive(t, []entry{es[0], {entryDB, make([]byte, len(es[1].body))},
			{entrySHA256, []byte(sha256Hex(make([]byte, len(es[1].body))))}}, nil), ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			m, path, err := ReadWithPassKey(context.Background(), bytes.NewReader(encrypt(t, c.plain)), passKey(t), dir)
			if c.want == nil {
				if err != nil || m == nil || path == "" {
					t.Fatalf("got %v", err)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			assertEmpty(t, dir)
		})
	}
}

// A cancelled Read leaves nothing behind and says why.
func TestReadCancelled(t *testing.T) {
	st := newStore(t)
	good, _ := writeBackup(t, st, newKey(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	_, _, err := ReadWithPassKey(ctx, bytes.NewReader(good), passKey(t), dir)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v, want context.Canceled only", err)
	}
	assertEmpty(t, dir)
}

func names(es []entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.name)
	}
	return out
}

// A sparse database entry (whose holes the tar reader would make up: a few
// bytes could claim a terabyte) is refused before anything is written.
func TestReadRefusesSparse(t *testing.T) {
	st := newStore(t)
	good, _ := writeBackup(t, st, newKey(t))
	es := entries(t, good)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := writeEntry(tw, entryManifest, epoch, es[0].body); err != nil {
		t.Fatal(err)
	}
	tw.Flush()
	// A PAX header for a GNU sparse 1.0 file of 1 TiB: written as a regular
	// entry, then its type flag patched to 'x'.
	var recs string
	for _, kv := range [][2]string{{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"},
		{"GNU.sparse.name", entryDB}, {"GNU.sparse.realsize", "1099511627776"}} {
		rec := " " + kv[0] + "=" + kv[1] + "\n"
		n := len(rec) + 1
		for len(fmt.Sprint(n))+len(rec) != n {
			n++
		}
		recs += fmt.Sprint(n) + rec
	}
	start := buf.Len()
	if err := writeEntry(tw, "PaxHeaders/"+entryDB, epoch, []byte(recs)); err != nil {
		t.Fatal(err)
	}
	tw.Flush()
	hdr := buf.Bytes()[start : start+512]
	hdr[156] = 'x'
	copy(hdr[148:156], "        ")
	sum := 0
	for _, c := range hdr {
		sum += int(c)
	}
	copy(hdr[148:156], fmt.Sprintf("%06o\x00 ", sum))
	body := append([]byte("1\n0\n512\n"), make([]byte, 1024-len("1\n0\n512\n"))...)
	if err := writeEntry(tw, entryDB, epoch, body); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	dir := t.TempDir()
	_, _, err := ReadWithPassKey(context.Background(), bytes.NewReader(encrypt(t, buf.Bytes())), passKey(t), dir)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "sparse") {
		t.Fatalf("got %v", err)
	}
	t.Log(err)
	assertEmpty(t, dir)
}
