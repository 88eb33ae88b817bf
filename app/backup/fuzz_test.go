package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/usipipo/usipipo/store"
)

// FuzzReadContent feeds readContent — the archive and manifest parsing
// behind the decryption — arbitrary plaintext. It must never panic, must
// fail only with ErrCorrupt or ErrUnsupported, and must leave nothing behind
// when it fails.
//
//	go test -run '^$' -fuzz FuzzReadContent -fuzztime 1m -fuzzminimizetime 100x ./app/backup
//
// (The valid seed is a whole bbolt file, ~28 KB: minimizing inputs that
// large takes long, hence the short -fuzzminimizetime.)
func FuzzReadContent(f *testing.F) {
	// Seeds built without the crypto (no scrypt in every worker's setup).
	st := newStore(f)
	addUsers(f, st, newIDs(10), 3)
	var db bytes.Buffer
	if _, err := st.Snapshot(&db); err != nil {
		f.Fatal(err)
	}
	key := newKey(f)
	m, err := json.Marshal(Manifest{Format: 1, Created: epoch, Schema: store.SchemaVersion, DataKey: key[:],
		DBSize: int64(db.Len())})
	if err != nil {
		f.Fatal(err)
	}
	es := []entry{{entryManifest, m}, {entryDB, db.Bytes()}, {entrySHA256, []byte(sha256Hex(db.Bytes()))}}
	plain := archive(f, es, nil)
	f.Add(plain)
	f.Add(plain[:len(plain)/2])
	f.Add(archive(f, es[:1], nil))
	f.Add(archive(f, []entry{{entryManifest, []byte(`{"format":1,"schema":2,"db_size":1,"data_key":"` +
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE=" + `"}`)}, {entryDB, []byte{0}},
		{entrySHA256, []byte(sha256Hex([]byte{0}))}}, nil))
	f.Add([]byte{})
	dir := f.TempDir() // one for all inputs: a temp dir per input slows minimizing a lot
	f.Fuzz(func(t *testing.T, in []byte) {
		m, path, err := readContent(context.Background(), bytes.NewReader(in), dir)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error of no known kind: %v", err)
			}
			if m != nil || path != "" {
				t.Fatalf("error %v with a result", err)
			}
			assertEmpty(t, dir)
			return
		}
		if _, err := os.Stat(path); err != nil || len(m.DBSHA256) != 64 {
			t.Fatalf("accepted, but %v, manifest %v", err, m.LogValue())
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	})
}
