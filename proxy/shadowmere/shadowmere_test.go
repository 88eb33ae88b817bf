package shadowmere

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/egress"
)

// TestHandshakeCheck: a real ss-server is live through a Shadowsocks
// handshake; the same server listed with a wrong password, a closed port and
// a server that accepts but never relays are dead; a method we do not speak
// falls back to a TCP connect; an entry at a refused address is never dialled.
func TestHandshakeCheck(t *testing.T) {
	good, _ := ssServer(t, "chacha20-ietf-poly1305", "pw-good")
	gcm, _ := ssServer(t, "aes-256-gcm", "pw-gcm")
	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts, reads, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); c.Read(make([]byte, 1024)); time.Sleep(5 * time.Second) }()
		}
	}()
	hostile, err := net.Listen("tcp", "127.0.0.2:0")
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
	closed := freePort(t)
	l := newList(t, Options{URL: "http://unused.example", Target: target(t), CheckTimeout: time.Second})
	cases := []struct {
		p       Proxy
		alive   bool
		check   string
		errWant error
	}{
		{Proxy{Server: "127.0.0.1", Port: portOf(good), Method: "chacha20-ietf-poly1305", Password: "pw-good"}, true, CheckShadowsocks, nil},
		{Proxy{Server: "127.0.0.1", Port: portOf(gcm), Method: "aes-256-gcm", Password: "pw-gcm"}, true, CheckShadowsocks, nil},
		{Proxy{Server: "127.0.0.1", Port: portOf(good), Method: "chacha20-ietf-poly1305", Password: "wrong"}, false, "", ErrNoReply},
		{Proxy{Server: "127.0.0.1", Port: portOf(silent.Addr().String()), Method: "aes-128-gcm", Password: "pw-not-shown"}, false, "", ErrNoReply},
		{Proxy{Server: "127.0.0.1", Port: closed, Method: "aes-256-gcm", Password: "pw-not-shown"}, false, "", nil},
		{Proxy{Server: "127.0.0.1", Port: portOf(silent.Addr().String()), Method: "rc4-md5", Password: "pw-not-shown"}, true, CheckTCP, nil},
		{Proxy{Server: "127.0.0.2", Port: portOf(hostile.Addr().String()), Method: "aes-256-gcm", Password: "pw-not-shown"}, false, "", egress.ErrDenied},
	}
	for _, c := range cases {
		start := time.Now()
		lat, how, err := l.Probe(context.Background(), c.p)
		if (err == nil) != c.alive || how != c.check || c.errWant != nil && !errors.Is(err, c.errWant) {
			t.Errorf("%s %s/%s: alive=%v check=%q err=%v; want alive=%v check=%q err=%v",
				c.p.Addr(), c.p.Method, c.p.Password, err == nil, how, err, c.alive, c.check, c.errWant)
		}
		if c.alive && (lat <= 0 || lat > time.Since(start)) {
			t.Errorf("%s: latency %v", c.p.Addr(), lat)
		}
		if err != nil && strings.Contains(err.Error(), c.p.Password) {
			t.Errorf("error carries the password: %v", err)
		}
	}
	select {
	case <-probed:
		t.Fatal("hostile entry was dialled")
	default:
	}
}

// TestRefreshAndBest: the list fetched from the API (two pages of
// countries) keeps the live entries by latency; a proxy that dies is
// dropped by the next re-check of Run, and Run ends with its context.
func TestRefreshAndBest(t *testing.T) {
	good, stop := ssServer(t, "chacha20-ietf-poly1305", "pw")
	closed := freePort(t)
	sub := "[" + strings.Join([]string{
		entry("127.0.0.1", portOf(good), "chacha20-ietf-poly1305", "pw", "good"),
		entry("127.0.0.1", closed, "aes-256-gcm", "pw", "dead"),
		entry("127.0.0.2", 443, "aes-256-gcm", "pw", "hostile"),
		entry("127.0.0.1", portOf(good), "chacha20-ietf-poly1305", "pw", "duplicate"),
		entry("", 1, "aes-256-gcm", "pw", "no server"),
	}, ",") + "]"
	pages := []string{
		`{"count":2,"next":"NEXT","results":[{"ip_address":"127.0.0.9","port":1,"location_country_code":"XX"}]}`,
		fmt.Sprintf(`{"count":2,"next":null,"results":[{"ip_address":"127.0.0.1","port":%d,"location_country_code":"de"}]}`, portOf(good)),
	}
	api := fake(t, sub, pages)
	// The URL as copied from a Shadowmere site names its /api/sub endpoint.
	l := newList(t, Options{URL: api.URL + "/api/sub", Target: target(t), RecheckEvery: 100 * time.Millisecond, CheckTimeout: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	eventually(t, 5*time.Second, "first refresh", func() bool { return l.Status().Live == 1 })
	if st := l.Status(); st.Fetched != 3 || st.LastError != "" {
		t.Fatalf("status %+v", st)
	}
	best := l.Best(10, "")
	if len(best) != 1 || best[0].Remarks != "good" || best[0].Country != "DE" || best[0].Latency <= 0 || best[0].Check != CheckShadowsocks {
		t.Fatalf("best %+v", best)
	}
	if got := l.Best(10, "de"); len(got) != 1 {
		t.Fatalf("country filter is case-sensitive: %+v", got)
	}
	if got := l.Best(10, "FR"); len(got) != 0 {
		t.Fatalf("country filter %+v", got)
	}
	stop()
	eventually(t, 5*time.Second, "dead proxy dropped by the re-check", func() bool { return len(l.Best(0, "")) == 0 })
	if api.subHits.Load() != 1 {
		t.Fatalf("re-check fetched the list again (%d fetches)", api.subHits.Load())
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not end with its context")
	}
}

// TestFetchErrors: bad JSON, a slow instance, an error status and a next
// page off the instance fail the fetch, and a failed refresh keeps the
// previous list.
func TestFetchErrors(t *testing.T) {
	bad := fake(t, `[{"server": `, []string{`{}`})
	if _, err := newList(t, Options{URL: bad.URL}).Fetch(context.Background()); err == nil {
		t.Fatal("bad JSON accepted")
	}
	badPage := fake(t, `[]`, []string{`{"next": 5}`})
	if _, err := newList(t, Options{URL: badPage.URL}).Fetch(context.Background()); err == nil {
		t.Fatal("bad page JSON accepted")
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	d := dialer(t)
	l := newList(t, Options{URL: slow.URL, HTTP: d.HTTPClient(300 * time.Millisecond)})
	start := time.Now()
	if _, err := l.Fetch(context.Background()); err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("timeout: %v after %v", err, time.Since(start))
	}
	status := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer status.Close()
	if _, err := newList(t, Options{URL: status.URL}).Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "502") {
		t.Fatalf("error status: %v", err)
	}
	offsite := fake(t, `[]`, []string{`{"next":"http://evil.example/api/proxies/","results":[]}`})
	if _, err := newList(t, Options{URL: offsite.URL}).Fetch(context.Background()); err == nil {
		t.Fatal("followed a next page off the instance")
	}

	// A refresh that fails keeps what the last one found.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	good := fake(t, "["+entry("127.0.0.1", portOf(ln.Addr().String()), "rc4-md5", "pw", "tcp-only")+"]", []string{`{"next":null,"results":[]}`})
	gl := newList(t, Options{URL: good.URL})
	if err := gl.Refresh(context.Background()); err != nil || len(gl.Best(0, "")) != 1 {
		t.Fatalf("refresh: %v %+v", err, gl.Best(0, ""))
	}
	good.Close()
	if err := gl.Refresh(context.Background()); err == nil {
		t.Fatal("refresh from a closed instance succeeded")
	}
	if len(gl.Best(0, "")) != 1 || gl.Status().LastError == "" {
		t.Fatalf("failed refresh dropped the list: %+v %+v", gl.Best(0, ""), gl.Status())
	}
}

// TestPaginationBound: a next chain longer than MaxPages stops there.
func TestPaginationBound(t *testing.T) {
	pages := make([]string, 10)
	for i := range pages {
		pages[i] = fmt.Sprintf(`{"next":"NEXT","results":[{"ip_address":"127.0.0.1","port":%d,"location_country_code":"C%d"}]}`, 1000+i, i)
	}
	var subs []string
	for i := range pages {
		subs = append(subs, entry("127.0.0.1", 1000+i, "aes-256-gcm", "pw", fmt.Sprint(i)))
	}
	api := fake(t, "["+strings.Join(subs, ",")+"]", pages)
	ps, err := newList(t, Options{URL: api.URL, MaxPages: 3, MaxProxies: 8}).Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 8 {
		t.Fatalf("kept %d entries, want MaxProxies 8", len(ps))
	}
	for i, p := range ps {
		want := ""
		if i < 3 {
			want = fmt.Sprintf("C%d", i)
		}
		if p.Country != want {
			t.Fatalf("entry %d country %q, want %q (only 3 pages read)", i, p.Country, want)
		}
	}
}

func TestOptions(t *testing.T) {
	d := dialer(t)
	for _, o := range []Options{
		{HTTP: d.HTTPClient(time.Second), Dial: d.DialContext},
		{URL: "ftp://x", HTTP: d.HTTPClient(time.Second), Dial: d.DialContext},
		{URL: "http://x", Dial: d.DialContext},
		{URL: "http://x", HTTP: d.HTTPClient(time.Second), Dial: d.DialContext, Target: "no-port"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("accepted %+v", o)
		}
	}
}
