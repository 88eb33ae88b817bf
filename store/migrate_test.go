package store

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/usipipo/usipipo/store/model"
)

const fixtureV1 = "testdata/schema1.db"

// TestWriteFixtureV1 regenerates the schema-1 fixture: a file as the first
// layout wrote it (key expiry at the top level, no expiry or address index).
// Run with USIPIPO_WRITE_FIXTURES=1; the file is committed.
func TestWriteFixtureV1(t *testing.T) {
	if os.Getenv("USIPIPO_WRITE_FIXTURES") == "" {
		t.Skip("set USIPIPO_WRITE_FIXTURES=1 to regenerate testdata")
	}
	os.Remove(fixtureV1)
	db, err := bolt.Open(fixtureV1, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v1Buckets := [][]byte{bMeta, bUsers, bUserKeys, bPlans, bSubs, bKeys, bProxies, bPayments, bCredits, bReferrals,
		bTickets, bSettings, bAPIKeys, bAdmins, bAudit, iUsersTG, iUsersRef, iSubsUser, iKeysUserStatus, iKeysActive,
		iProxiesActive, iProxiesUser, iPaymentsUser, iPaymentsCharge, iCreditsUser, iCreditsIdem, iReferrer,
		iTicketsStatus, iTicketsUser, iAuditUser}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range v1Buckets {
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		tx.Bucket(bMeta).Put(keySchema, u64(1))
		user := `{"id":"01jc0000000000000000000001","version":1,"telegram_id":77,"language":"es","referral_code":"rv1","created":"2026-01-01T00:00:00Z","updated":"2026-01-01T00:00:00Z"}`
		tx.Bucket(bUsers).Put([]byte("01jc0000000000000000000001"), []byte(user))
		tx.Bucket(iUsersTG).Put([]byte("77"), []byte("01jc0000000000000000000001"))
		tx.Bucket(iUsersRef).Put([]byte("rv1"), []byte("01jc0000000000000000000001"))
		for i, k := range []struct{ id, status, exp, addr string }{
			{"01jc0000000000000000000k01", "active", "2026-12-01T00:00:00Z", "10.66.0.2"},
			{"01jc0000000000000000000k02", "active", "2027-01-01T00:00:00Z", "10.66.0.3"},
			{"01jc0000000000000000000k03", "revoked", "2026-06-01T00:00:00Z", "10.66.0.4"},
		} {
			rec := map[string]any{"id": k.id, "version": 1, "user_id": "01jc0000000000000000000001", "type": "wireguard",
				"node": "n1", "name": "k", "status": k.status, "expires_at": k.exp, "limits": map[string]any{"data_cap": 1000 * (i + 1)},
				"secret": "c2VhbGVk", "addr_v4": k.addr, "created": "2026-01-01T00:00:00Z", "updated": "2026-01-01T00:00:00Z"}
			b, _ := json.Marshal(rec)
			tx.Bucket(bKeys).Put([]byte(k.id), b)
			tx.Bucket(iKeysUserStatus).Put(compose(str("01jc0000000000000000000001"), str(k.status), str(k.id)), nil)
			if k.status == "active" {
				tx.Bucket(iKeysActive).Put(compose(str("01jc0000000000000000000001"), str(k.id)), nil)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func copyFixture(t *testing.T) string {
	t.Helper()
	src, err := os.Open(fixtureV1)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst := filepath.Join(t.TempDir(), "usipipo.db")
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, src); err != nil {
		t.Fatal(err)
	}
	out.Close()
	return dst
}

func TestMigrateFromSchema1(t *testing.T) {
	path := copyFixture(t)
	if _, err := Open(Options{Path: path, ReadOnly: true}); err == nil {
		t.Fatal("read-only open of an old schema should ask for a migration")
	}
	s, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Check(); err != nil {
		t.Fatalf("after migration: %v", err)
	}
	k, err := s.Key("01jc0000000000000000000k01")
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC); !k.Limits.ExpiresAt.Equal(want) || k.Limits.DataCap != 1000 {
		t.Fatalf("migrated limits %+v", k.Limits)
	}
	due, err := s.KeysExpiredAt(time.Date(2026, 12, 15, 0, 0, 0, 0, time.UTC), 10)
	if err != nil || len(due) != 1 || due[0] != k.ID {
		t.Fatalf("expiry index after migration: %v %v", due, err)
	}
	// The address index protects migrated addresses: a new key cannot take one.
	g := newIDs(11)
	err = s.Do(t.Context(), meta(epoch), CreateKey{ID: g.next(epoch), UserID: "01jc0000000000000000000001", Type: model.WireGuard,
		Grant: ByAdmin, Secret: model.Sealed("x"), AddrV4: "10.66.0.2"})
	if !errors.Is(err, model.ErrExists) {
		t.Fatalf("taken address: %v", err)
	}
	// And the freed address of a revoked key can be reused.
	mustDo(t, s, epoch, CreateKey{ID: g.next(epoch), UserID: "01jc0000000000000000000001", Type: model.WireGuard,
		Grant: ByAdmin, Secret: model.Sealed("x"), AddrV4: "10.66.0.4"})
}

func TestRefuseNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put(keySchema, u64(SchemaVersion+1)) })
	s.Close()
	if _, err := Open(Options{Path: path}); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("newer schema: %v", err)
	}
}

func TestLockedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Open(Options{Path: path, Timeout: 50 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
}
