package shadowmere

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/egress"
)

// dialer allows 127.0.0.1 only: 127.0.0.2 stands for a private address a
// hostile list entry points at.
func dialer(t testing.TB) *egress.Dialer {
	t.Helper()
	d, err := egress.New(egress.Options{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, FlowsPerSecond: -1})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// fakeAPI is a local server speaking Shadowmere's API: /api/sub/ answers
// sub, and /api/proxies/?is_active=true&page=i answers pages[i], where NEXT
// is replaced by the URL of page i+1.
type fakeAPI struct {
	*httptest.Server
	subHits atomic.Int32
}

func fake(t testing.TB, sub string, pages []string) *fakeAPI {
	t.Helper()
	f := &fakeAPI{}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/sub/", func(w http.ResponseWriter, r *http.Request) {
		f.subHits.Add(1)
		fmt.Fprint(w, sub)
	})
	mux.HandleFunc("/api/proxies/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("is_active") != "true" {
			http.Error(w, "want is_active", http.StatusBadRequest)
			return
		}
		i, _ := strconv.Atoi(r.URL.Query().Get("page"))
		if i >= len(pages) {
			http.NotFound(w, r)
			return
		}
		next := "http://" + r.Host + "/api/proxies/?is_active=true&page=" + strconv.Itoa(i+1)
		fmt.Fprint(w, strings.ReplaceAll(pages[i], "NEXT", next))
	})
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func newList(t testing.TB, o Options) *List {
	t.Helper()
	d := dialer(t)
	if o.HTTP == nil {
		o.HTTP = d.HTTPClient(2 * time.Second)
	}
	o.Dial = d.DialContext
	if o.CheckTimeout == 0 {
		o.CheckTimeout = 2 * time.Second
	}
	l, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// target is the "internet site" the checks ask proxies to reach.
func target(t testing.TB) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// ssServer runs shadowsocks-libev's ss-server on loopback as a public
// proxy and returns its address and a function that kills it.
func ssServer(t testing.TB, method, password string) (string, func()) {
	t.Helper()
	if _, err := exec.LookPath("ss-server"); err != nil {
		t.Skip("ss-server (shadowsocks-libev) not installed")
	}
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "ss-server", "-s", "127.0.0.1", "-p", strconv.Itoa(port), "-k", password, "-m", method, "-t", "10")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() { cancel(); cmd.Wait() }
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("ss-server output:\n%s", out.String())
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ss-server did not listen on %s:\n%s", addr, out.String())
		}
	}
	return addr, stop
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

func entry(host string, port int, method, password, remarks string) string {
	return fmt.Sprintf(`{"id":1,"server":%q,"server_port":%d,"password":%q,"method":%q,"remarks":%q,"plugin":"","plugin_opts":null}`,
		host, port, password, method, remarks)
}

// eventually polls cond for up to d.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
	}
}
