package shadowmere

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/egress"
)

func dialer(t *testing.T) *egress.Dialer {
	d, err := egress.New(egress.Options{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// fake serves the Shadowmere API with alive (listening), dead and hostile entries.
func fake(t *testing.T, sub string, pages []string) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/sub/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, sub) })
	mux.HandleFunc("/api/proxies/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("is_active") != "true" {
			http.Error(w, "want is_active", 400)
			return
		}
		i, _ := strconv.Atoi(r.URL.Query().Get("page"))
		body := strings.ReplaceAll(pages[i], "NEXT", "http://"+r.Host+"/api/proxies/?is_active=true&page="+strconv.Itoa(i+1))
		fmt.Fprint(w, body)
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func TestFetchCheckBest(t *testing.T) {
	alive, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer alive.Close()
	hostile, err := net.Listen("tcp", "127.0.0.2:0") // loopback but not allowed: must not be probed
	if err != nil {
		t.Fatal(err)
	}
	defer hostile.Close()
	probed := make(chan struct{}, 1)
	go func() {
		if c, err := hostile.Accept(); err == nil {
			probed <- struct{}{}
			c.Close()
		}
	}()
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadPort := dead.Addr().(*net.TCPAddr).Port
	dead.Close()
	ap, hp := alive.Addr().(*net.TCPAddr).Port, hostile.Addr().(*net.TCPAddr).Port
	sub := fmt.Sprintf(`[{"server":"127.0.0.1","server_port":%d,"password":"p","method":"chacha20-ietf-poly1305","remarks":"a"},
		{"server":"127.0.0.1","server_port":%d,"password":"p","method":"aes-256-gcm","remarks":"dead"},
		{"server":"127.0.0.2","server_port":%d,"password":"p","method":"aes-256-gcm","remarks":"hostile"}]`, ap, deadPort, hp)
	pages := []string{
		`{"count":2,"next":"NEXT","results":[{"ip_address":"127.0.0.9","port":1,"location_country_code":"XX"}]}`,
		fmt.Sprintf(`{"count":2,"next":null,"results":[{"ip_address":"127.0.0.1","port":%d,"location_country_code":"DE"}]}`, ap),
	}
	srv := fake(t, sub, pages)
	d := dialer(t)
	l, err := New(Options{URL: srv.URL, HTTP: d.HTTPClient(2 * time.Second), Dial: d.DialContext, Every: time.Hour, CheckTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	ps, err := l.Fetch(ctx)
	if err != nil || len(ps) != 3 {
		t.Fatalf("fetch %v %v", ps, err)
	}
	var denied error
	for _, p := range ps {
		if p.Remarks == "hostile" {
			_, denied = l.probe(ctx, p)
		}
	}
	if !errors.Is(denied, egress.ErrDenied) {
		t.Fatalf("hostile entry: %v", denied)
	}
	if err := l.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	best := l.Best(10, "")
	if len(best) != 1 || best[0].Remarks != "a" || best[0].Country != "DE" || best[0].Latency <= 0 {
		t.Fatalf("best %+v", best)
	}
	if got := l.Best(10, "FR"); len(got) != 0 {
		t.Fatalf("country filter %+v", got)
	}
	select {
	case <-probed:
		t.Fatal("hostile entry was probed")
	default:
	}
}

func TestBadJSONAndTimeout(t *testing.T) {
	d := dialer(t)
	bad := fake(t, `[{"server": `, []string{`{}`})
	l, _ := New(Options{URL: bad.URL, HTTP: d.HTTPClient(time.Second), Dial: d.DialContext})
	defer l.Close()
	if _, err := l.Fetch(context.Background()); err == nil {
		t.Fatal("bad JSON accepted")
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(3 * time.Second) }))
	defer slow.Close()
	l2, _ := New(Options{URL: slow.URL, HTTP: d.HTTPClient(500 * time.Millisecond), Dial: d.DialContext})
	defer l2.Close()
	start := time.Now()
	if _, err := l2.Fetch(context.Background()); err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("timeout: %v after %v", err, time.Since(start))
	}
	offsite := fake(t, `[]`, []string{`{"next":"http://evil.example/api/proxies/","results":[]}`})
	l3, _ := New(Options{URL: offsite.URL, HTTP: d.HTTPClient(time.Second), Dial: d.DialContext})
	defer l3.Close()
	if _, err := l3.Fetch(context.Background()); err == nil {
		t.Fatal("followed a next page off the instance")
	}
}
