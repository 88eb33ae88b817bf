package store

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/usipipo/usipipo/store/model"
)

// Figures for BENCH.md. Every write benchmark fsyncs, in a fresh file in
// b.TempDir() (under TMPDIR: it must be a real disk, not tmpfs, for the
// numbers to mean anything), and reports "cmds/s": durable commands per
// second of wall time with that many concurrent writers.
//
//	go test -run '^$' -bench . -benchtime 2s ./store/

// benchWriters runs b.N operations spread over writers goroutines.
func benchWriters(b *testing.B, writers int, op func(i int) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range writers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				if err := op(i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cmds/s")
}

func benchUser(i int) CreateUser {
	id, err := model.NewID(epoch.Add(time.Duration(i)*time.Millisecond), nil)
	if err != nil {
		panic(err)
	}
	return CreateUser{ID: id, TelegramID: int64(i) + 1, UserKey: model.Sealed("sealed-user-key-of-32-bytes-long"),
		Language: "es", ReferralCode: "r" + id}
}

// benchDir is a fresh directory under TMPDIR; the write figures are
// meaningless on tmpfs, where fdatasync costs nothing.
func benchDir(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err == nil && fs.Type == 0x01021994 { // TMPFS_MAGIC
		b.Logf("%s is on tmpfs: fsync is free there, set TMPDIR to a directory on a real disk", dir)
	}
	return dir
}

func benchStore(b *testing.B) *Store {
	b.Helper()
	s, err := Open(Options{Path: filepath.Join(benchDir(b), "usipipo.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := s.Close(); err != nil {
			b.Error(err)
		}
	})
	return s
}

// BenchmarkDo: durable CreateUser commands through the group committer.
func BenchmarkDo(b *testing.B) {
	for _, writers := range []int{1, 16, 64, 256} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := benchStore(b)
			tx0, st0 := lastTx(b, s.db), s.db.Stats().TxStats
			benchWriters(b, writers, func(i int) error {
				return s.Do(context.Background(), meta(epoch), benchUser(i))
			})
			// Where the time goes: group size, pages written and the time
			// bbolt spent writing them (pwrite64 + both fdatasyncs).
			commits := float64(lastTx(b, s.db) - tx0)
			st := s.db.Stats().TxStats
			b.ReportMetric(float64(b.N)/commits, "cmds/commit")
			b.ReportMetric(float64(st.GetWrite()-st0.GetWrite())/commits, "pages/commit")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/commits, "ms/commit")
			b.ReportMetric(float64((st.GetWriteTime()-st0.GetWriteTime()).Microseconds())/1000/commits, "io-ms/commit")
		})
	}
}

// lastTx is the id of the last committed write transaction.
func lastTx(b *testing.B, db *bolt.DB) int {
	var id int
	if err := db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		b.Fatal(err)
	}
	return id
}

// The baselines write a comparable record (a user's JSON) with the store's
// own bbolt options.
func benchBolt(b *testing.B) (*bolt.DB, []byte) {
	b.Helper()
	db, err := bolt.Open(filepath.Join(benchDir(b), "bolt.db"), 0o600,
		&bolt.Options{NoFreelistSync: false, FreelistType: bolt.FreelistMapType}) // as in Open (store.go)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket(bUsers)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	u := benchUser(0)
	v, err := json.Marshal(model.User{ID: u.ID, TelegramID: 123456789, Language: "es", ReferralCode: u.ReferralCode,
		Created: epoch, Updated: epoch, Version: 1})
	if err != nil {
		b.Fatal(err)
	}
	return db, v
}

func putUser(v []byte, i int) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error { return tx.Bucket(bUsers).Put([]byte(benchUser(i).ID), v) }
}

// BenchmarkBoltUpdate: one Put per db.Update, the naive way.
func BenchmarkBoltUpdate(b *testing.B) {
	for _, writers := range []int{1, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			db, v := benchBolt(b)
			benchWriters(b, writers, func(i int) error { return db.Update(putUser(v, i)) })
		})
	}
}

// BenchmarkBoltBatch: one Put per db.Batch, bbolt's own coalescing
// (MaxBatchDelay 10ms, MaxBatchSize 1000).
func BenchmarkBoltBatch(b *testing.B) {
	for _, writers := range []int{16, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			db, v := benchBolt(b)
			benchWriters(b, writers, func(i int) error { return db.Batch(putUser(v, i)) })
		})
	}
}

// benchPopulate writes users users with keysPer active keys each, in large
// groups, and returns the users.
func benchPopulate(b *testing.B, s *Store, users, keysPer int) []CreateUser {
	b.Helper()
	out := make([]CreateUser, users)
	var ops []Op
	flush := func() {
		errs, err := s.ApplyBatch(ops)
		if err != nil {
			b.Fatal(err)
		}
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		ops = ops[:0]
	}
	g := newIDs(42)
	for i := range out {
		out[i] = benchUser(i)
		ops = append(ops, Op{meta(epoch), out[i]})
		for range keysPer {
			k := newKey(g, epoch, out[i].ID, ByAdmin)
			ops = append(ops, Op{meta(epoch), k})
		}
		if len(ops) >= 1000 {
			flush()
		}
	}
	if len(ops) > 0 {
		flush()
	}
	return out
}

// BenchmarkRead: point lookups among 10,000 users.
func BenchmarkRead(b *testing.B) {
	s := benchStore(b)
	users := benchPopulate(b, s, 10_000, 0)
	b.Run("User", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := s.User(users[i%len(users)].ID); err != nil {
				b.Fatal(err)
			}
			i += 7919
		}
	})
	b.Run("UserByTelegram", func(b *testing.B) {
		i := 0
		for b.Loop() {
			u := users[i%len(users)]
			if got, err := s.UserByTelegram(u.TelegramID); err != nil || got.ID != u.ID {
				b.Fatal(err)
			}
			i += 7919
		}
	})
	b.Run("User/parallel", func(b *testing.B) {
		var seed atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			i := int(seed.Add(1)) * 1009
			for pb.Next() {
				if _, err := s.User(users[i%len(users)].ID); err != nil {
					b.Error(err)
					return
				}
				i += 7919
			}
		})
	})
}

// BenchmarkEachActiveKey: the reconcile loop's scan of 10,000 active keys
// (1,000 users with 10 keys each).
func BenchmarkEachActiveKey(b *testing.B) {
	s := benchStore(b)
	benchPopulate(b, s, 1_000, 10)
	for b.Loop() {
		n := 0
		if err := s.EachActiveKey(func(*model.Key) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
		if n != 10_000 {
			b.Fatalf("%d active keys, want 10000", n)
		}
	}
	b.ReportMetric(float64(b.N)*10_000/b.Elapsed().Seconds(), "keys/s")
}
