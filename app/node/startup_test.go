package node

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/config"
	"github.com/usipipo/usipipo/app/plane"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/keyring"
	"github.com/usipipo/usipipo/store/model"
)

// nullPlane takes the desired set and serves nothing: start-up figures
// then measure the node's own work (decode, open every secret, hand over).
type nullPlane struct{ n int }

func (p *nullPlane) Name() string           { return "null" }
func (p *nullPlane) Types() []model.KeyType { return []model.KeyType{model.WireGuard, model.Outline} }
func (p *nullPlane) Apply(_ context.Context, c []plane.Credential) error {
	p.n = len(c)
	return nil
}
func (p *nullPlane) Counters(context.Context) (plane.Snapshot, error) {
	return plane.Snapshot{Epoch: "x"}, nil
}

// populate fills an initialised data dir with users and one active key for
// each of the first keys users, through the same commands the node applies.
func populate(tb testing.TB, data string, users, keys int) {
	tb.Helper()
	if _, err := Init(context.Background(), data, "bench passphrase", rand.Reader); err != nil {
		tb.Fatal(err)
	}
	st, err := store.Open(store.Options{Path: dbPath(data)})
	if err != nil {
		tb.Fatal(err)
	}
	defer st.Close()
	dk, err := DataKey(data, st)
	if err != nil {
		tb.Fatal(err)
	}
	m := store.Meta{At: time.Now().UTC(), Actor: "bench"}
	for start := 0; start < users; start += 2000 {
		var ops []store.Op
		for i := start; i < min(start+2000, users); i++ {
			uid, _ := model.NewID(m.At, rand.Reader)
			ops = append(ops, store.Op{Meta: m, Cmd: store.CreateUser{ID: uid, TelegramID: int64(i + 1),
				UserKey: model.Sealed("k"), Language: "es", ReferralCode: "c" + strconv.Itoa(i)}})
			if i < keys {
				kid, _ := model.NewID(m.At, rand.Reader)
				sealed, _ := keyring.Seal(dk, rand.Reader, "key", kid, []byte(`{"method":"chacha20-ietf-poly1305","password":"p"}`))
				ops = append(ops, store.Op{Meta: m, Cmd: store.CreateKey{ID: kid, UserID: uid, Type: model.Outline,
					Node: "n", Grant: store.ByAdmin, Secret: sealed}})
			}
		}
		errs, err := st.ApplyBatch(ops)
		if err != nil {
			tb.Fatal(err)
		}
		for _, e := range errs {
			if e != nil {
				tb.Fatal(e)
			}
		}
	}
}

// TestStartupChild is the child process of BenchmarkStartup: it runs a node
// on USIPIPO_BENCH_DATA and prints when the API is ready, when the data
// planes are installed, and its resident memory.
func TestStartupChild(t *testing.T) {
	data := os.Getenv("USIPIPO_BENCH_DATA")
	if data == "" {
		t.Skip("child of BenchmarkStartup")
	}
	cfg, _ := config.Parse([]string{"--data", data, "--http", "127.0.0.1:0", "--backup-every", "0"}, nil)
	cfg.Validate()
	begin := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	np := &nullPlane{}
	Run(ctx, cfg, Options{Logs: devNull{}, Planes: func(*Node) ([]plane.Plane, error) { return []plane.Plane{np}, nil },
		Started: func(n *Node) {
			api := time.Since(begin)
			<-n.recon.Ready()
			planes := time.Since(begin)
			fmt.Printf("startup api_ms=%.1f planes_ms=%.1f installed=%d rss_kb=%d anon_kb=%d\n",
				api.Seconds()*1000, planes.Seconds()*1000, np.n, status("VmRSS:"), status("RssAnon:"))
			cancel()
		}})
}

type devNull struct{}

func (devNull) Write(p []byte) (int, error) { return len(p), nil }

// status reads a kB figure of /proc/self/status. VmRSS counts the pages of
// the mmapped database file the node touched (reclaimable page cache);
// RssAnon is the memory the node itself holds.
func status(field string) int {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field) {
			v, _ := strconv.Atoi(strings.Fields(line)[1])
			return v
		}
	}
	return 0
}

// BenchmarkStartup starts a node on 100,000 users and 10,000 active keys in
// a fresh process each time and reports when the API is ready, when the
// data planes are installed, and resident memory. Target: API ready < 2 s.
func BenchmarkStartup(b *testing.B) {
	data := filepath.Join(b.TempDir(), "data")
	populate(b, data, 100_000, 10_000)
	var api, planes, rss, anon float64
	for b.Loop() {
		cmd := exec.Command(os.Args[0], "-test.run=^TestStartupChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "USIPIPO_BENCH_DATA="+data)
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var a, p float64
			var n, r, an int
			if _, err := fmt.Sscanf(sc.Text(), "startup api_ms=%f planes_ms=%f installed=%d rss_kb=%d anon_kb=%d", &a, &p, &n, &r, &an); err == nil {
				if n != 10_000 {
					b.Fatalf("installed %d credentials, want 10000", n)
				}
				api, planes, rss, anon = api+a, planes+p, rss+float64(r), anon+float64(an)
			}
		}
		if err := cmd.Wait(); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N)
	b.ReportMetric(api/n, "api_ready_ms")
	b.ReportMetric(planes/n, "planes_installed_ms")
	b.ReportMetric(rss/n/1024, "rss_MiB")
	b.ReportMetric(anon/n/1024, "anon_MiB")
}
