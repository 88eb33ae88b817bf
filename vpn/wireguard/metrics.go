package wireguard

import "github.com/VictoriaMetrics/metrics"

// serverMetrics are the plane's usipipo_wireguard_* metrics.
type serverMetrics struct {
	installed  *metrics.Gauge // peers on the device
	active     *metrics.Gauge // peers with a handshake in the last 3 minutes
	handshakes *metrics.Counter
	rxBytes    *metrics.Counter
	txBytes    *metrics.Counter
	tcpFlows   *metrics.Counter
	udpFlows   *metrics.Counter
	dnsQueries *metrics.Counter
	refused    map[string]*metrics.Counter // by reason
	knocks     map[string]*metrics.Counter // handshake initiations sifted for parked peers, by outcome (lazy.go)
}

// Refusal reasons of flows, a label of usipipo_wireguard_refused_flows_total.
const (
	refusedEgress   = "egress"    // the egress policy or its rate limit
	refusedPeers    = "peer"      // towards the tunnel pools: peers are isolated
	refusedConns    = "max_conns" // the credential's connection limit
	refusedUnknown  = "unknown"   // a source address no credential holds
	refusedDialFail = "dial"      // the destination did not answer
)

// newServerMetrics gets or creates the metrics: a node that restarts its
// planes (after a restore) registers them on the same set again.
func newServerMetrics(s *metrics.Set) *serverMetrics {
	m := &serverMetrics{
		handshakes: s.GetOrCreateCounter("usipipo_wireguard_handshakes_total"),
		rxBytes:    s.GetOrCreateCounter(`usipipo_wireguard_bytes_total{direction="rx"}`),
		txBytes:    s.GetOrCreateCounter(`usipipo_wireguard_bytes_total{direction="tx"}`),
		tcpFlows:   s.GetOrCreateCounter(`usipipo_wireguard_flows_total{proto="tcp"}`),
		udpFlows:   s.GetOrCreateCounter(`usipipo_wireguard_flows_total{proto="udp"}`),
		dnsQueries: s.GetOrCreateCounter("usipipo_wireguard_dns_queries_total"),
		refused:    map[string]*metrics.Counter{},
		knocks:     map[string]*metrics.Counter{},
	}
	for _, r := range []string{refusedEgress, refusedPeers, refusedConns, refusedUnknown, refusedDialFail} {
		m.refused[r] = s.GetOrCreateCounter(`usipipo_wireguard_refused_flows_total{reason="` + r + `"}`)
	}
	for _, k := range []string{knockMAC1, knockJunk, knockCookie, knockSource, knockLoad, knockWoken, knockNotMine, knockCrossing} {
		m.knocks[k] = s.GetOrCreateCounter(`usipipo_wireguard_knocks_total{outcome="` + k + `"}`)
	}
	m.installed = s.GetOrCreateGauge("usipipo_wireguard_peers_installed", nil)
	m.active = s.GetOrCreateGauge("usipipo_wireguard_peers_active", nil)
	return m
}
