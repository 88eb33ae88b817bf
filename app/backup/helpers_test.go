package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/keyring"
	"github.com/usipipo/usipipo/store/model"
)

const testPassphrase = "correct horse battery staple"

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// testPassKey derives the tests' PassKey once (scrypt is slow on purpose).
var testPassKey = sync.OnceValues(func() (keyring.PassKey, error) {
	return keyring.NewPassKey([]byte(testPassphrase), nil)
})

func passKey(t testing.TB) keyring.PassKey {
	t.Helper()
	pk, err := testPassKey()
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

func newKey(t testing.TB) keyring.Key {
	t.Helper()
	k, err := keyring.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// openStore opens a store at path and, when the test ends, checks and
// closes it.
func openStore(t testing.TB, path string) *store.Store {
	t.Helper()
	st, err := store.Open(store.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Check(); err != nil {
			t.Errorf("store check at cleanup: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return st
}

func newStore(t testing.TB) *store.Store {
	t.Helper()
	return openStore(t, filepath.Join(t.TempDir(), DBName))
}

// ids makes record ids from a seeded source.
type ids struct {
	mu sync.Mutex
	r  *rand.ChaCha8
}

func newIDs(seed byte) *ids { return &ids{r: rand.NewChaCha8([32]byte{seed})} }

func (g *ids) next(at time.Time) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	id, err := model.NewID(at, g.r)
	if err != nil {
		panic(err)
	}
	return id
}

func createUser(id string, tg int64) store.CreateUser {
	return store.CreateUser{ID: id, TelegramID: tg, UserKey: model.Sealed("sealed-user-key"), Language: "es",
		ReferralCode: "r" + id}
}

func meta() store.Meta { return store.Meta{At: epoch, Actor: "test"} }

// addUsers creates n users with Do and returns their ids.
func addUsers(t testing.TB, st *store.Store, g *ids, n int) []string {
	t.Helper()
	out := make([]string, n)
	ops := make([]store.Op, n)
	for i := range out {
		out[i] = g.next(epoch)
		ops[i] = store.Op{Meta: meta(), Cmd: createUser(out[i], 0)}
	}
	for i, err := range st.DoOps(context.Background(), ops) {
		if err != nil {
			t.Fatalf("user %d: %v", i, err)
		}
	}
	return out
}

// writeBackup backs st up to memory.
func writeBackup(t testing.TB, st *store.Store, dataKey keyring.Key) ([]byte, *Manifest) {
	t.Helper()
	var buf bytes.Buffer
	m, err := Write(context.Background(), &buf, st, dataKey, passKey(t), Manifest{Node: "n1", Version: "test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), m
}

type entry struct {
	name string
	body []byte
}

// entries decrypts a backup and returns its archive's entries.
func entries(t testing.TB, backup []byte) []entry {
	t.Helper()
	plain, err := keyring.DecryptPassKey(bytes.NewReader(backup), passKey(t))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(plain)
	var out []entry
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, entry{hdr.Name, b})
	}
}

// archive builds a plaintext archive of es followed by extra bytes.
func archive(t testing.TB, es []entry, extra []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		if err := writeEntry(tw, e.name, epoch, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return append(buf.Bytes(), extra...)
}

// encrypt encrypts plaintext as a backup stream for the test PassKey.
func encrypt(t testing.TB, plain []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := keyring.Encrypt(&buf, passKey(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// assertEmpty fails unless dir has no entries.
func assertEmpty(t testing.TB, dir string) {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		t.Errorf("left behind in %s: %s", dir, e.Name())
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
