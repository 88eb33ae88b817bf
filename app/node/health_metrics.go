package node

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"golang.org/x/sys/unix"
)

// diskFresh is how long a statfs of the data directory's filesystem is
// reused: scrapes every few seconds cost at most one syscall per window.
const diskFresh = 15 * time.Second

// diskUsage caches statfs of one directory's filesystem.
type diskUsage struct {
	dir string
	now func() time.Time

	mu         sync.Mutex
	at         time.Time
	free, size uint64
}

// read returns the free (to unprivileged users, as the node's service user
// is) and total bytes, from a statfs at most diskFresh old. A failed statfs
// keeps the last good figures; its error is returned once, by the read that
// made it, so a failing disk is logged once per window, not per gauge.
func (d *diskUsage) read() (free, size uint64, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if now := d.now(); d.at.IsZero() || now.Sub(d.at) >= diskFresh {
		d.at = now
		var st unix.Statfs_t
		if err = unix.Statfs(d.dir, &st); err == nil {
			d.free, d.size = st.Bavail*uint64(st.Bsize), st.Blocks*uint64(st.Bsize)
		} else {
			err = fmt.Errorf("statfs %s: %w", d.dir, err)
		}
	}
	return d.free, d.size, err
}

// registerDiskMetrics adds usipipo_data_fs_free_bytes and
// usipipo_data_fs_size_bytes for the filesystem holding dir.
func registerDiskMetrics(set *metrics.Set, dir string, now func() time.Time, onErr func(error)) {
	d := &diskUsage{dir: dir, now: now}
	value := func(pick func(free, size uint64) uint64) func() float64 {
		return func() float64 {
			free, size, err := d.read()
			if err != nil && onErr != nil {
				onErr(err)
			}
			return float64(pick(free, size))
		}
	}
	set.GetOrCreateGauge("usipipo_data_fs_free_bytes", value(func(free, _ uint64) uint64 { return free }))
	set.GetOrCreateGauge("usipipo_data_fs_size_bytes", value(func(_, size uint64) uint64 { return size }))
}

// Listener labels of usipipo_tls_cert_expiry_timestamp_seconds.
const (
	certPublic     = "public"      // --public-listen (given files or ACME)
	certHTTP       = "http"        // --http with --http-tls
	certOutlineAPI = "outline_api" // --outline-api
)

// registerCertExpiry adds usipipo_tls_cert_expiry_timestamp_seconds{listener}
// reading notAfter (cheap: a value the listener keeps). A zero time (no
// certificate yet, e.g. ACME before its first handshake) reads 0, which the
// alert rule ignores. Registering again replaces the reader: a part restarted
// by an upgrade may serve a renewed certificate.
func registerCertExpiry(set *metrics.Set, listener string, notAfter func() time.Time) {
	name := `usipipo_tls_cert_expiry_timestamp_seconds{listener="` + listener + `"}`
	set.UnregisterMetric(name)
	set.GetOrCreateGauge(name, func() float64 {
		t := notAfter()
		if t.IsZero() {
			return 0
		}
		return float64(t.Unix())
	})
}

// leafNotAfter is the expiry of c's leaf certificate (zero when it has none).
func leafNotAfter(c tls.Certificate) (time.Time, error) {
	leaf := c.Leaf
	if leaf == nil {
		if len(c.Certificate) == 0 {
			return time.Time{}, fmt.Errorf("no certificate")
		}
		var err error
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return time.Time{}, fmt.Errorf("parsing the certificate: %w", err)
		}
	}
	return leaf.NotAfter, nil
}

// noteFixedCert registers the expiry of a certificate a listener keeps for
// its life (--http-tls, --outline-api).
func (n *Node) noteFixedCert(listener string, c tls.Certificate) {
	t, err := leafNotAfter(c)
	if err != nil {
		n.Log.Warn("cert_expiry_unknown", "details", listener+": "+err.Error())
		return
	}
	registerCertExpiry(n.Metrics, listener, func() time.Time { return t })
}
