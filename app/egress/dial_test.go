package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

var allowLoopback = prefixes("127.0.0.1/32")

// listen starts a TCP listener on 127.0.0.1:0 and returns it and a channel
// that receives every connection it accepts.
func listen(t testing.TB) (net.Listener, <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		close(accepted)
		for c := range accepted {
			c.Close()
		}
	})
	return ln, accepted
}

func portOf(ln net.Listener) string {
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

// expectAccepted waits for one connection on accepted.
func expectAccepted(t *testing.T, accepted <-chan net.Conn) {
	t.Helper()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the listener accepted no connection")
	}
}

// expectNoneAccepted checks that the listener got no connection.
func expectNoneAccepted(t *testing.T, accepted <-chan net.Conn) {
	t.Helper()
	select {
	case c := <-accepted:
		c.Close()
		t.Fatalf("the listener accepted a connection from %v", c.RemoteAddr())
	case <-time.After(100 * time.Millisecond):
	}
}

func TestDialLoopbackListener(t *testing.T) {
	ln, accepted := listen(t)
	ctx := context.Background()

	set := metrics.NewSet()
	allowed := newDialer(t, Options{Allow: allowLoopback, Metrics: set})
	c, err := allowed.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("allowed dial: %v", err)
	}
	c.Close()
	expectAccepted(t, accepted)
	var b strings.Builder
	set.WritePrometheus(&b)
	if !strings.Contains(b.String(), "usipipo_egress_flows_total 1\n") {
		t.Errorf("flows not counted:\n%s", b.String())
	}

	def := newDialer(t, Options{})
	for _, network := range []string{"tcp", "tcp4"} {
		_, err = def.DialContext(ctx, network, ln.Addr().String())
		if got := reasonOf(t, err); got != ReasonOwn && got != ReasonLoopback {
			t.Fatalf("default dial %s: reason %q, want own or loopback", network, got)
		}
	}
	// An empty host means this machine.
	_, err = def.DialContext(ctx, "tcp", ":"+portOf(ln))
	if err == nil || !errors.Is(err, ErrDenied) {
		t.Fatalf("dial to the empty host: %v", err)
	}
	expectNoneAccepted(t, accepted)
}

func TestDialMailPorts(t *testing.T) {
	d := newDialer(t, Options{Allow: allowLoopback})
	r, _ := startDNS(t, map[string][]netip.Addr{"mx.test": {netip.MustParseAddr("127.0.0.1")}})
	dn := newDialer(t, Options{Allow: allowLoopback, Resolver: r})
	ctx := context.Background()
	for _, tc := range []struct {
		d       *Dialer
		network string
		addr    string
	}{
		{d, "tcp", "127.0.0.1:25"},
		{d, "tcp", "127.0.0.1:465"},
		{d, "udp", "127.0.0.1:587"},
		{d, "tcp", "127.0.0.1:smtp"}, // resolved port, judged at the socket
		{dn, "tcp", "mx.test:25"},
		{dn, "tcp", "mx.test:submissions"},
	} {
		_, err := tc.d.DialContext(ctx, tc.network, tc.addr)
		if got := reasonOf(t, err); got != ReasonMail {
			t.Errorf("%s %s: reason %q, want mail", tc.network, tc.addr, got)
		}
	}
}

func TestDialNamesResolvingToPrivate(t *testing.T) {
	ln, accepted := listen(t)
	port := portOf(ln)
	records := map[string][]netip.Addr{
		"private.test":   {netip.MustParseAddr("10.0.0.1")},
		"cgnat.test":     {netip.MustParseAddr("100.64.0.1")},
		"loopback.test":  {netip.MustParseAddr("127.0.0.1")},
		"metadata.test":  {netip.MustParseAddr("169.254.169.254")},
		"v6loop.test":    {netip.MustParseAddr("::1")},
		"ula.test":       {netip.MustParseAddr("fd00::1")},
		"mapped.test":    {netip.MustParseAddr("::ffff:10.0.0.1")},
		"mappedlo.test":  {netip.MustParseAddr("::ffff:127.0.0.1")},
		"nat64.test":     {netip.MustParseAddr("64:ff9b::a00:1")},
		"sixtofour.test": {netip.MustParseAddr("2002:a00:1::1")},
		"mixed.test":     {netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("fd00::1")},
		"public.test":    {netip.MustParseAddr("8.8.8.8")},
	}
	r, _ := startDNS(t, records)
	ctx := context.Background()
	def := newDialer(t, Options{Resolver: r, Timeout: 5 * time.Second})
	loop := newDialer(t, Options{Resolver: r, Timeout: 5 * time.Second, Allow: allowLoopback})

	for name := range records {
		if name == "public.test" {
			continue
		}
		for _, network := range []string{"tcp", "udp"} {
			_, err := def.DialContext(ctx, network, name+":"+port)
			if err == nil || !errors.Is(err, ErrDenied) {
				t.Errorf("%s %s: got %v, want a refusal", network, name, err)
			}
		}
	}
	expectNoneAccepted(t, accepted)

	// With 127.0.0.1 allowed, a name with a loopback address among private ones
	// connects to the loopback address alone; the others stay refused.
	for _, name := range []string{"loopback.test", "mappedlo.test", "mixed.test"} {
		c, err := loop.DialContext(ctx, "tcp", name+":"+port)
		if err != nil {
			t.Fatalf("%s with 127.0.0.1 allowed: %v", name, err)
		}
		if got := c.RemoteAddr().String(); got != ln.Addr().String() {
			t.Errorf("%s connected to %s", name, got)
		}
		c.Close()
		expectAccepted(t, accepted)
	}
	for _, name := range []string{"private.test", "mapped.test", "nat64.test", "v6loop.test"} {
		if _, err := loop.DialContext(ctx, "tcp", name+":"+port); !errors.Is(err, ErrDenied) {
			t.Errorf("%s with 127.0.0.1 allowed: %v, want a refusal", name, err)
		}
	}

	// A public-looking answer passes the policy. UDP "connect" sends nothing,
	// so this needs no network; it may still fail if there is no route.
	c, err := def.DialContext(ctx, "udp4", "public.test:53")
	if err == nil {
		if got := c.RemoteAddr().String(); got != "8.8.8.8:53" {
			t.Errorf("public.test connected to %s", got)
		}
		c.Close()
	} else if errors.Is(err, ErrDenied) {
		t.Errorf("public.test refused: %v", err)
	} else if dnsErr := (*net.DNSError)(nil); errors.As(err, &dnsErr) {
		t.Errorf("public.test did not resolve: %v", err)
	}
}

// TestDialRebinding: a name that first resolves to a public address and then
// to loopback is refused when dialled, because the address judged is the one
// connected to, not the answer of an earlier lookup.
func TestDialRebinding(t *testing.T) {
	ln, accepted := listen(t)
	r, dns := startDNS(t, nil)
	dns.setAnswer(func(name string, n int) ([]netip.Addr, bool) {
		if name != "rebind.test" {
			return nil, false
		}
		if n <= 2 { // the first A and AAAA questions
			return []netip.Addr{netip.MustParseAddr("8.8.8.8")}, true
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, true
	})
	d := newDialer(t, Options{Resolver: r})
	ctx := context.Background()

	// What a pre-resolving check would have seen:
	first, err := r.LookupNetIP(ctx, "ip", "rebind.test")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range first {
		if err := d.Check(netip.AddrPortFrom(a, 80)); err != nil {
			t.Fatalf("first answer %v refused: %v", a, err)
		}
	}
	_, err = d.DialContext(ctx, "tcp", "rebind.test:"+portOf(ln))
	var de *DeniedError
	if !errors.As(err, &de) || de.Addr.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("rebound dial: %v, want a refusal of 127.0.0.1", err)
	}
	expectNoneAccepted(t, accepted)
}

func TestDialErrorsNameNoCredential(t *testing.T) {
	const cred = "cred-7f3a9c"
	d := newDialer(t, Options{FlowsPerSecond: 1, FlowBurst: 1})
	ctx := context.Background()
	_, err := d.DialFor(ctx, cred, "tcp", "10.0.0.1:80")
	if err == nil || strings.Contains(err.Error(), cred) || !strings.Contains(err.Error(), "10.0.0.1:80") {
		t.Errorf("refusal: %v", err)
	}
	_, err = d.DialFor(ctx, cred, "tcp", "10.0.0.1:80")
	if !errors.Is(err, ErrRateLimited) || strings.Contains(err.Error(), cred) {
		t.Errorf("rate limit: %v", err)
	}
	if _, err := d.DialContext(ctx, "ip4:icmp", "8.8.8.8"); err == nil {
		t.Error("raw IP network accepted")
	}
	if _, err := d.DialContext(ctx, "unix", "/tmp/x"); err == nil {
		t.Error("unix network accepted")
	}
}

func TestHTTPClient(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer ok.Close()

	allowed := newDialer(t, Options{Allow: allowLoopback}).HTTPClient(5 * time.Second)
	resp, err := allowed.Get(ok.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" {
		t.Fatalf("body %q", body)
	}

	def := newDialer(t, Options{}).HTTPClient(5 * time.Second)
	if _, err := def.Get(ok.URL); !errors.Is(err, ErrDenied) {
		t.Fatalf("default client reached loopback: %v", err)
	}

	// A redirect to another loopback address is dialled through the policy too.
	ln2, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 here: %v", err)
	}
	other := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		t.Error("the redirect target was reached")
	}))
	other.Listener.Close()
	other.Listener = ln2
	other.Start()
	defer other.Close()
	redir := httptest.NewServer(http.RedirectHandler(other.URL, http.StatusFound))
	defer redir.Close()
	if _, err := allowed.Get(redir.URL); !errors.Is(err, ErrDenied) {
		t.Fatalf("redirect to 127.0.0.2: %v, want a refusal", err)
	}
}

// TestConnectTimeout: callers that connect sockets themselves after
// CheckFor get the dialer's own bound, the default when none is set.
func TestConnectTimeout(t *testing.T) {
	for _, c := range []struct{ set, want time.Duration }{{0, DefaultTimeout}, {3 * time.Second, 3 * time.Second}} {
		d, err := New(Options{Timeout: c.set})
		if err != nil {
			t.Fatal(err)
		}
		if got := d.ConnectTimeout(); got != c.want {
			t.Errorf("Timeout %v: ConnectTimeout() = %v, want %v", c.set, got, c.want)
		}
	}
}
