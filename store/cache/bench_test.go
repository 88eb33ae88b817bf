package cache

import (
	"bytes"
	"context"
	"testing"
	"text/template"

	"github.com/VictoriaMetrics/metrics"
)

// wgConf is a WireGuard client config of about 300 bytes, the typical
// rendering the cache saves.
var wgConf = template.Must(template.New("wg").Parse(`[Interface]
PrivateKey = {{.PrivateKey}}
Address = {{.Address}}
DNS = {{.DNS}}

[Peer]
PublicKey = {{.ServerKey}}
PresharedKey = {{.PSK}}
Endpoint = {{.Host}}:{{.Port}}
AllowedIPs = 0.0.0.0/0, ::/0
PersistentKeepalive = 25
`))

type wgParams struct {
	PrivateKey, Address, DNS, ServerKey, PSK, Host string
	Port                                           int
}

var benchParams = wgParams{
	PrivateKey: "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=",
	Address:    "10.8.0.17/32",
	DNS:        "1.1.1.1",
	ServerKey:  "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
	PSK:        "FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=",
	Host:       "vpn.example.org",
	Port:       51820,
}

func renderConf() (string, int64, error) {
	var b bytes.Buffer
	if err := wgConf.Execute(&b, benchParams); err != nil {
		return "", 0, err
	}
	return b.String(), int64(b.Len()), nil
}

var benchKey = Key{Kind: "key", ID: "01J9Z3T8Q4K7X2M5N6P8R0S1T2", Version: 42, Variant: "wg-conf"}

func primed(b *testing.B, opts Options) *Cache {
	c := newTestCache(b, opts)
	v, cost, err := renderConf()
	if err != nil {
		b.Fatal(err)
	}
	Set(c, benchKey, v, cost, Configs)
	c.Wait()
	if _, ok := Get[string](c, benchKey); !ok {
		b.Fatal("value not cached")
	}
	return c
}

func TestBenchRenderingSize(t *testing.T) {
	v, cost, err := renderConf()
	if err != nil || cost < 250 || cost > 350 || int64(len(v)) != cost {
		t.Fatalf("rendering is %d bytes (err %v), want about 300", cost, err)
	}
}

func BenchmarkKeyHash(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = benchKey.hash()
	}
}

func BenchmarkGetHit(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts Options
	}{
		{"no-metrics", Options{MaxBytes: 1 << 20}},
		{"metrics", Options{MaxBytes: 1 << 20, Metrics: metrics.NewSet()}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := primed(b, bc.opts)
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := Get[string](c, benchKey); !ok {
					b.Fatal("miss")
				}
			}
		})
		b.Run(bc.name+"-parallel", func(b *testing.B) {
			c := primed(b, bc.opts)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, ok := Get[string](c, benchKey); !ok {
						b.Error("miss")
						return
					}
				}
			})
		})
	}
}

// BenchmarkGetOrCompute compares a cached config (hit) with rendering it on
// every call (cache disabled, and the bare template as the floor).
func BenchmarkGetOrCompute(b *testing.B) {
	ctx := context.Background()
	b.Run("hit", func(b *testing.B) {
		c := primed(b, Options{MaxBytes: 1 << 20})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := GetOrCompute(ctx, c, benchKey, Configs, renderConf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("disabled-render", func(b *testing.B) {
		c, err := New(Options{}) // MaxBytes 0: disabled
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(c.Close)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := GetOrCompute(ctx, c, benchKey, Configs, renderConf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("template-only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := renderConf(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
