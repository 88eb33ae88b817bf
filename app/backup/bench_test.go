package backup

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/usipipo/usipipo/store"
)

// BenchmarkBackup100k backs up and restores a store of 100,000 users (the
// design's stored-records capacity), built with ApplyBatch in groups of
// 1000. MB/s is of the database file; s/op is the whole operation.
//
//	go test -run '^$' -bench Backup100k -benchtime 3x ./app/backup
func BenchmarkBackup100k(b *testing.B) {
	st := newStore(b)
	g := newIDs(11)
	start := time.Now()
	for n := 0; n < 100_000; n += 1000 {
		ops := make([]store.Op, 1000)
		for i := range ops {
			ops[i] = store.Op{Meta: meta(), Cmd: createUser(g.next(epoch), int64(n+i+1))}
		}
		errs, err := st.ApplyBatch(ops)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range errs {
			if e != nil {
				b.Fatal(e)
			}
		}
	}
	fi, err := os.Stat(st.Path())
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("built 100,000 users in %v; file %.1f MB", time.Since(start).Round(time.Millisecond), float64(fi.Size())/1e6)
	dataKey, pk := newKey(b), passKey(b)
	var backup bytes.Buffer
	m, err := Write(context.Background(), &backup, st, dataKey, pk, Manifest{}, nil)
	if err != nil {
		b.Fatal(err)
	}

	b.Run("write", func(b *testing.B) {
		b.SetBytes(m.DBSize)
		for b.Loop() {
			if _, err := Write(context.Background(), io.Discard, st, dataKey, pk, Manifest{}, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/op")
	})
	b.Run("read+verify", func(b *testing.B) {
		b.SetBytes(m.DBSize)
		dir := b.TempDir()
		for b.Loop() {
			_, path, err := ReadWithPassKey(context.Background(), bytes.NewReader(backup.Bytes()), pk, dir)
			if err != nil {
				b.Fatal(err)
			}
			os.Remove(path)
		}
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/op")
	})
}
