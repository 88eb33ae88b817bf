// Package plane is the contract between the node's reconcile loop and its
// data planes (vpn/wireguard, vpn/outline, proxy/mtproto).
//
// A data plane knows nothing of users, plans or money (DESIGN.md principle
// 2). The reconcile loop hands it the complete desired set of credentials
// with their limits; the plane installs exactly that set and enforces the
// limits by itself — expiry at ExpiresAt, the data budget, speed, concurrent
// connections — so cutting a user off needs no write. It counts bytes per
// credential and hands them back as cumulative counters.
package plane

import (
	"context"
	"time"

	"github.com/usipipo/usipipo/store/model"
)

// Credential is one installed credential and its limits.
type Credential struct {
	ID      string
	Version uint64 // the record version: unchanged means nothing to do
	Type    model.KeyType
	// Secret is the opened secret material (WireGuard private key and PSK,
	// Outline password, MTProto secret), plane-specific. Planes must not log
	// it and should keep only what they need (a WireGuard server needs the
	// public key and PSK only).
	Secret []byte
	Public string
	AddrV4 string
	AddrV6 string
	Limits model.Limits

	// Budget is how many more bytes the credential may move, counted from
	// Mark. A plane cuts the credential (or throttles it to
	// Limits.ThrottleBps) when its own counter (rx+tx) minus Mark reaches
	// Budget. NoBudget means no cap.
	Budget uint64
	// Mark is the plane's counter value (rx+tx, MarkEpoch) already
	// accounted in the store; from a different epoch it counts as 0.
	Mark      uint64
	MarkEpoch string
}

// NoBudget marks a credential without a data cap.
const NoBudget = ^uint64(0)

// Counter is a plane's cumulative count for one credential since the plane
// (Epoch) started. Counters never decrease within an epoch.
type Counter struct {
	ID       string
	Rx, Tx   uint64
	Conns    int       // open connections or sessions now
	Sources  int       // distinct client addresses seen over the plane's window
	LastSeen time.Time // last traffic or handshake
}

// Snapshot is one reading of every counter of a plane.
type Snapshot struct {
	Epoch    string // changes when the plane's counters restart from zero
	Counters []Counter
}

// Plane is a data plane. Apply and Counters are called by one goroutine (the
// reconcile loop), never concurrently with each other; a plane serves
// traffic on its own goroutines meanwhile.
type Plane interface {
	// Name names the plane in logs and metrics ("wireguard", "outline", "mtproto").
	Name() string
	// Types are the credential types the plane serves.
	Types() []model.KeyType
	// Apply installs exactly creds: new ones are added, missing ones removed
	// (their open connections closed within seconds), changed ones updated
	// without disturbing others.
	Apply(ctx context.Context, creds []Credential) error
	// Counters reads every installed credential's counters.
	Counters(ctx context.Context) (Snapshot, error)
}
