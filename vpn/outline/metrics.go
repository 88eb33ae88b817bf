package outline

import (
	"github.com/VictoriaMetrics/metrics"
)

// serverMetrics are the plane's counters, named usipipo_outline_*.
type serverMetrics struct {
	accepted    *metrics.Counter // TCP connections accepted
	authed      *metrics.Counter // TCP connections that found their key
	authFailed  *metrics.Counter // no key matched (drained)
	replays     *metrics.Counter // a known salt (drained)
	rateLimited *metrics.Counter // source over its failure budget: drained without a search
	refused     *metrics.Counter // authenticated but stopped, over MaxConns, or egress refused
	trials      *metrics.Counter // key trials done by searches
	searchSec   *metrics.Histogram
	rxBytes     *metrics.Counter
	txBytes     *metrics.Counter
	udpIn       *metrics.Counter
	udpDropped  *metrics.Counter
	udpReplays  *metrics.Counter // authenticated datagrams with a known salt (also dropped)
	udpSessions *metrics.Counter
}

func newServerMetrics(set *metrics.Set, s *Server) serverMetrics {
	set.GetOrCreateGauge("usipipo_outline_keys", func() float64 { return float64(len(s.keys.Load().list)) })
	return serverMetrics{
		accepted:    set.GetOrCreateCounter("usipipo_outline_tcp_accepted_total"),
		authed:      set.GetOrCreateCounter("usipipo_outline_tcp_authenticated_total"),
		authFailed:  set.GetOrCreateCounter(`usipipo_outline_handshake_failures_total{reason="auth"}`),
		replays:     set.GetOrCreateCounter(`usipipo_outline_handshake_failures_total{reason="replay"}`),
		rateLimited: set.GetOrCreateCounter(`usipipo_outline_handshake_failures_total{reason="rate_limited"}`),
		refused:     set.GetOrCreateCounter("usipipo_outline_refused_total"),
		trials:      set.GetOrCreateCounter("usipipo_outline_key_trials_total"),
		searchSec:   set.GetOrCreateHistogram("usipipo_outline_key_search_seconds"),
		rxBytes:     set.GetOrCreateCounter(`usipipo_outline_bytes_total{dir="rx"}`),
		txBytes:     set.GetOrCreateCounter(`usipipo_outline_bytes_total{dir="tx"}`),
		udpIn:       set.GetOrCreateCounter("usipipo_outline_udp_packets_total"),
		udpDropped:  set.GetOrCreateCounter("usipipo_outline_udp_dropped_total"),
		udpSessions: set.GetOrCreateCounter("usipipo_outline_udp_sessions_total"),
		udpReplays:  set.GetOrCreateCounter("usipipo_outline_udp_replays_total"),
	}
}
