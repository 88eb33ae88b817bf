package logging_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/logging"
)

// The handler against slog.NewJSONHandler on the same records, same run:
// go test -bench . -benchmem ./app/logging
func BenchmarkHandler(b *testing.B) {
	handlers := []struct {
		name string
		new  func() *slog.Logger
	}{
		{"usipipo", func() *slog.Logger { return logging.New(io.Discard, "vpn-service", slog.LevelInfo) }},
		{"slog.JSON", func() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }},
	}
	err := errors.New("handshake did not complete")
	cases := []struct {
		name string
		log  func(l *slog.Logger)
		prep func(l *slog.Logger) *slog.Logger
	}{
		{"seed_line", func(l *slog.Logger) {
			l.Info("create_config", logging.UserID, "5f0c7a9e-3b1d-4a52-9f1e-2c7d8b6a4e10", "vpn_type", "wireguard",
				logging.Duration(150*time.Millisecond), logging.IP, "192.168.1.1")
		}, nil},
		{"eight_attrs", func(l *slog.Logger) {
			l.LogAttrs(context.TODO(), slog.LevelInfo, "peer_stats", slog.String("peer", "p1"), slog.Int64("rx", 123456789),
				slog.Int64("tx", 987654321), slog.Duration("age", 90*time.Second), slog.Bool("active", true),
				slog.Float64("loss", 0.013), slog.Any("err", err), slog.String("endpoint", "203.0.113.7:51820"))
		}, nil},
		{"with_group", func(l *slog.Logger) {
			l.Info("handshake", "rtt_ms", 12, slog.Group("peer", "id", "p1", "allowed", "10.66.0.2/32"))
		}, func(l *slog.Logger) *slog.Logger {
			return l.With(logging.UserID, "u1", "request", 7).WithGroup("wg").With("iface", "wg0")
		}},
		{"disabled", func(l *slog.Logger) { l.Debug("noise", "i", 1) }, nil},
	}
	for _, c := range cases {
		for _, h := range handlers {
			b.Run(c.name+"/"+h.name, func(b *testing.B) {
				l := h.new()
				if c.prep != nil {
					l = c.prep(l)
				}
				b.ReportAllocs()
				for b.Loop() {
					c.log(l)
				}
			})
		}
	}
	for _, h := range handlers {
		b.Run("parallel/"+h.name, func(b *testing.B) {
			l := h.new()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					cases[0].log(l)
				}
			})
		})
	}
}

func BenchmarkSampler(b *testing.B) {
	s := logging.NewSampler(100, 100, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Allow(false)
		}
	})
}

// BenchmarkHandle measures the handlers alone, on a prebuilt record, without
// slog.Logger's caller lookup.
func BenchmarkHandle(b *testing.B) {
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "create_config", 0)
	r.AddAttrs(slog.String(logging.UserID, "5f0c7a9e-3b1d-4a52-9f1e-2c7d8b6a4e10"), slog.String("vpn_type", "wireguard"),
		logging.Duration(150*time.Millisecond), slog.String(logging.IP, "192.168.1.1"),
		slog.Group("peer", slog.String("id", "p1"), slog.Int("mtu", 1420)))
	for _, h := range []struct {
		name string
		h    slog.Handler
	}{
		{"usipipo", logging.New(io.Discard, "vpn-service", nil).Handler()},
		{"slog.JSON", slog.NewJSONHandler(io.Discard, nil)},
	} {
		b.Run(h.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h.h.Handle(context.TODO(), r)
			}
		})
	}
}
