package node

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"golang.org/x/sys/unix"

	"github.com/usipipo/usipipo/app/config"
)

// scrapeValue returns the value of the series name in set's exposition.
func scrapeValue(t *testing.T, set *metrics.Set, name string) (float64, bool) {
	t.Helper()
	var b bytes.Buffer
	set.WritePrometheus(&b)
	for _, l := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			return f, true
		}
	}
	return 0, false
}

func TestDiskMetricsFromStatfsCached(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	var errs []error
	set := metrics.NewSet()
	registerDiskMetrics(set, dir, func() time.Time { return now }, func(err error) { errs = append(errs, err) })

	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	size, ok := scrapeValue(t, set, "usipipo_data_fs_size_bytes")
	if !ok || size != float64(st.Blocks*uint64(st.Bsize)) || size == 0 {
		t.Fatalf("size %v (present %v), statfs says %d", size, ok, st.Blocks*uint64(st.Bsize))
	}
	free, ok := scrapeValue(t, set, "usipipo_data_fs_free_bytes")
	want := float64(st.Bavail * uint64(st.Bsize))
	if !ok || free <= 0 || free > size || free < want-64<<20 || free > want+64<<20 {
		t.Fatalf("free %v (present %v), statfs says about %v of %v", free, ok, want, size)
	}

	// Within the window the cached figures serve, with no statfs: the
	// directory's removal goes unnoticed until the window ends.
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	now = now.Add(diskFresh - time.Second)
	if again, _ := scrapeValue(t, set, "usipipo_data_fs_size_bytes"); again != size || len(errs) != 0 {
		t.Fatalf("within the window: size %v, errors %v", again, errs)
	}
	// After it, the failed statfs is reported once and the last good
	// figures stay.
	now = now.Add(2 * time.Second)
	if again, _ := scrapeValue(t, set, "usipipo_data_fs_size_bytes"); again != size {
		t.Fatalf("after a failed statfs size %v, want the last good %v", again, size)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "statfs") {
		t.Fatalf("errors %v, want one statfs error", errs)
	}
}

func TestCertExpiryMetrics(t *testing.T) {
	data := t.TempDir()
	now := time.Now()
	// The --http-tls self-signed certificate's NotAfter shows up.
	tcfg, _, err := httpTLS(&config.Config{Data: data, HTTPTLS: config.HTTPTLSSelfSigned}, now)
	if err != nil {
		t.Fatal(err)
	}
	want, err := leafNotAfter(tcfg.Certificates[0])
	if err != nil || want.Before(now.Add(selfSignedLife-2*time.Hour)) {
		t.Fatalf("NotAfter %v, %v", want, err)
	}
	set := metrics.NewSet()
	n := &Node{Metrics: set, Log: slog.New(slog.DiscardHandler)}
	n.noteFixedCert(certHTTP, tcfg.Certificates[0])
	name := `usipipo_tls_cert_expiry_timestamp_seconds{listener="http"}`
	if got, ok := scrapeValue(t, set, name); !ok || got != float64(want.Unix()) {
		t.Fatalf("%s = %v (present %v), want %d", name, got, ok, want.Unix())
	}
	// The Outline Manager API certificate, read back from its files.
	if _, err := loadOrCreateMgmt(data, "127.0.0.1", rand.Reader, now); err != nil {
		t.Fatal(err)
	}
	acc, err := loadMgmt(filepath.Join(data, mgmtDirName))
	if err != nil {
		t.Fatal(err)
	}
	n.noteFixedCert(certOutlineAPI, acc.cert)
	mw, err := leafNotAfter(acc.cert)
	if err != nil || !mw.After(now) {
		t.Fatalf("outline_api NotAfter %v, %v", mw, err)
	}
	if got, ok := scrapeValue(t, set, `usipipo_tls_cert_expiry_timestamp_seconds{listener="outline_api"}`); !ok || got != float64(mw.Unix()) {
		t.Fatalf("outline_api expiry %v (present %v), want %v", got, ok, mw)
	}
	// A listener without a certificate yet reads 0; registering again
	// (a renewed certificate) replaces the reader.
	var cur time.Time
	registerCertExpiry(set, certPublic, func() time.Time { return cur })
	pub := `usipipo_tls_cert_expiry_timestamp_seconds{listener="public"}`
	if got, ok := scrapeValue(t, set, pub); !ok || got != 0 {
		t.Fatalf("public before a certificate: %v (present %v)", got, ok)
	}
	cur = now.Add(90 * 24 * time.Hour)
	if got, _ := scrapeValue(t, set, pub); got != float64(cur.Unix()) {
		t.Fatalf("public %v, want %d", got, cur.Unix())
	}
	renewed := now.Add(180 * 24 * time.Hour)
	registerCertExpiry(set, certPublic, func() time.Time { return renewed })
	if got, _ := scrapeValue(t, set, pub); got != float64(renewed.Unix()) {
		t.Fatalf("public after re-registering %v, want %d", got, renewed.Unix())
	}
	if _, err := leafNotAfter(tls.Certificate{}); err == nil {
		t.Fatal("an empty certificate has an expiry")
	}
}
