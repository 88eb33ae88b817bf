package bottest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// QvaPay is a local stand-in for QvaPay's merchant API v1: create_invoice
// and transactions/{uuid}, with the real query parameters and JSON fields.
type QvaPay struct {
	AppID, Secret, URL string

	srv *http.Server
	mu  sync.Mutex
	txs map[string]*qvaTx
	seq int
}

type qvaTx struct {
	UUID     string `json:"uuid"`
	AppID    string `json:"app_id"`
	Amount   string `json:"amount"`
	RemoteID string `json:"remote_id"`
	Status   string `json:"status"`
}

// NewQvaPay starts the stand-in on 127.0.0.1.
func NewQvaPay(appID, secret string) (*QvaPay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	q := &QvaPay{AppID: appID, Secret: secret, URL: "http://" + ln.Addr().String(), txs: map[string]*qvaTx{}}
	q.srv = &http.Server{Handler: http.HandlerFunc(q.serve), ReadHeaderTimeout: 5 * time.Second}
	go q.srv.Serve(ln)
	return q, nil
}

// Close stops the stand-in.
func (q *QvaPay) Close() { q.srv.Close() }

func (q *QvaPay) serve(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	w.Header().Set("Content-Type", "application/json")
	if v.Get("app_id") != q.AppID || v.Get("app_secret") != q.Secret {
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":"Unauthorized"}`))
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case r.URL.Path == "/api/v1/create_invoice":
		q.seq++
		id := fmt.Sprintf("6f1c2d3e-0000-4000-8000-%012d", q.seq)
		q.txs[id] = &qvaTx{UUID: id, AppID: q.AppID, Amount: v.Get("amount"), RemoteID: v.Get("remote_id"), Status: "pending"}
		json.NewEncoder(w).Encode(map[string]any{"app_id": q.AppID, "amount": v.Get("amount"), "description": v.Get("description"),
			"remote_id": v.Get("remote_id"), "signed": v.Get("signed"), "transation_uuid": id,
			"url": q.URL + "/pay/" + id, "signedUrl": q.URL + "/pay/" + id + "?signed=1"})
	case strings.HasPrefix(r.URL.Path, "/api/v1/transactions/"):
		tx := q.txs[strings.TrimPrefix(r.URL.Path, "/api/v1/transactions/")]
		if tx == nil {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":"Not found"}`))
			return
		}
		json.NewEncoder(w).Encode(tx)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// Pay marks the invoice of remote id (our payment id) paid and returns its
// transaction uuid ("" when there is none).
func (q *QvaPay) Pay(remoteID string) string {
	q.mu.Lock()
	defer q.mu.Unlock()
	for id, tx := range q.txs {
		if tx.RemoteID == remoteID {
			tx.Status = "paid"
			return id
		}
	}
	return ""
}
