package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// Admins get the daily report, the newest encrypted backup as a document,
// payment alerts (by e-mail: app/pay already tells their chats) and error
// alerts, each once.
func TestAdminNotifications(t *testing.T) {
	e := newEnv(t)
	smtp := newFakeSMTP(t)
	u := e.user(9100, "es")
	e.key(u.ID, model.Limits{})
	dir := filepath.Join(e.dir, "backups")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	first := writeBackup(t, dir, "usipipo-20261110T030000Z.bak", 300_000)
	writeBackup(t, dir, "usipipo-20261109T030000Z.bak", 10)
	n := e.notifier(func(o *Options) {
		o.AdminChats = []int64{9001, 9002}
		o.AdminEmails = []string{"ops@example.org"}
		o.Mail = e.mailOptions(smtp)
		o.BackupDir = dir
	})
	sc := newScanner(n)
	scanOnce(t, sc)
	for _, chat := range []int64{9001, 9002} {
		got := e.bot.to(chat)
		if len(got) != 1 || !strings.Contains(got[0], "Informe del 2026-11-09") || !strings.Contains(got[0], "Claves activas: 1") {
			t.Fatalf("chat %d: %q", chat, got)
		}
	}
	docs := e.bot.documents()
	if len(docs) != 2 || docs[0].Name != "usipipo-20261110T030000Z.bak" || !bytes.Equal(docs[0].Body, first) ||
		!strings.Contains(docs[0].Caption, "usipipo-20261110T030000Z.bak") {
		t.Fatalf("documents: %d, first %q", len(docs), docs[0].Name)
	}

	payID := settlePayment(t, e, u.ID)
	ctx := context.Background()
	n.sendAlert(ctx, alert{"reconcile", "wireguard plane failed"})
	n.sendAlert(ctx, alert{"reconcile", "wireguard plane failed"}) // the same within the hour
	scanOnce(t, sc)
	scanOnce(t, sc)
	for _, chat := range []int64{9001, 9002} {
		got := e.bot.to(chat)
		if len(got) != 2 || !strings.Contains(got[1], "wireguard plane failed") {
			t.Fatalf("chat %d: %q", chat, got)
		}
	}
	if d := e.bot.documents(); len(d) != 2 {
		t.Fatalf("backup sent again: %d documents", len(d))
	}
	mails := smtp.messages()
	for _, m := range mails {
		if m.To != "ops@example.org" || !m.TLS || !strings.Contains(m.Data, "Subject: uSipipo: aviso") {
			t.Errorf("mail %+v", m)
		}
	}
	if len(mails) != 3 || !strings.Contains(mails[0].Data, "Informe del 2026-11-09") ||
		!strings.Contains(mails[1].Data, "wireguard plane failed") ||
		!strings.Contains(mails[2].Data, "Pago recibido: 100 ⭐") || !strings.Contains(mails[2].Data, payID) {
		t.Fatalf("admin mails: %+v", mails)
	}

	// A day later a newer backup exists: it goes out, with the next report.
	writeBackup(t, dir, "usipipo-20261111T030000Z-2.bak", 50)
	writeBackup(t, dir, "usipipo-20261111T030000Z.bak", 60)
	e.clock.Set(e.clock.Now().Add(25 * time.Hour))
	scanOnce(t, sc)
	docs = e.bot.documents()
	if len(docs) != 4 || docs[3].Name != "usipipo-20261111T030000Z-2.bak" {
		t.Fatalf("second backup: %d documents, last %q", len(docs), docs[len(docs)-1].Name)
	}
	if got := e.bot.to(9001); len(got) != 3 || !strings.Contains(got[2], "2026-11-10") {
		t.Fatalf("second report: %q", got)
	}
	lim := testLimits()
	checkRates(t, e.bot.messages(), lim.PerWindow, lim.Window, lim.ChatGap) // several to one chat: spaced
}

func writeBackup(t *testing.T, dir, name string, size int) []byte {
	t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return b
}

// settlePayment records a settled Stars payment for an extra key slot.
func settlePayment(t *testing.T, e *env, userID string) string {
	t.Helper()
	id, err := model.NewID(e.clock.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	m := store.Meta{At: e.clock.Now(), Actor: "pay:stars"}
	ctx := context.Background()
	err = e.st.Do(ctx, m, store.CreatePayment{Payment: model.Payment{ID: id, UserID: userID, Provider: "stars",
		Amount: 100, Currency: "XTR", Product: model.Product{Kind: "slots", Qty: 1}}})
	if err == nil {
		err = e.st.Do(ctx, m, store.SettlePayment{PaymentID: id, ChargeID: "charge-" + id, Amount: 100, Currency: "XTR"})
	}
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Without STARTTLS the mailer refuses to send (no password or message in
// clear), and the notification stays due.
func TestMailRequiresSTARTTLS(t *testing.T) {
	e := newEnv(t)
	smtp := newFakeSMTP(t)
	smtp.noTLS = true
	m, err := newMailer(*e.mailOptions(smtp))
	if err != nil {
		t.Fatal(err)
	}
	err = m.Send(context.Background(), "ana@example.org", "s", "b")
	if !errors.Is(err, ErrNoSTARTTLS) {
		t.Fatalf("Send = %v", err)
	}
	if len(smtp.messages()) != 0 {
		t.Fatal("a message went out in clear")
	}
	smtp.noTLS = false
	bad := e.mailOptions(smtp)
	bad.TLS = nil // the system roots do not trust the test certificate
	m, _ = newMailer(*bad)
	if err := m.Send(context.Background(), "ana@example.org", "s", "b"); err == nil {
		t.Fatal("an untrusted certificate was accepted")
	}
}

func TestCatalogue(t *testing.T) {
	c, err := loadCatalogue()
	if err != nil {
		t.Fatal(err)
	}
	if got := c.text("pt", "key_restored", "key", "k1"); got != "✅ Tu clave «k1» vuelve a estar activa." {
		t.Errorf("default language: %q", got)
	}
	if got := c.text("en", "cap_80", "key", "k", "percent", "81", "used", "8 GB", "cap", "10 GB"); !strings.Contains(got, "81% of its data (8 GB of 10 GB)") {
		t.Errorf("en: %q", got)
	}
	for lang, texts := range c {
		for id, s := range texts {
			if strings.Count(s, "{") != strings.Count(s, "}") {
				t.Errorf("%s %s: unbalanced placeholder", lang, id)
			}
		}
	}
}

// Error records logged through AlertHandler reach the admins; other levels
// and the notifier's own records do not.
func TestAlertHandler(t *testing.T) {
	e := newEnv(t)
	n := e.notifier(func(o *Options) { o.AdminChats = []int64{9300} })
	var buf bytes.Buffer
	log := slog.New(n.AlertHandler(slog.NewJSONHandler(&buf, nil)))
	log.With("service", "reconcile").Error("plane_failed", "error", "wireguard: device down")
	log.With("service", "reconcile").Warn("slow")
	log.With("service", "notify").Error("notify_scan_failed", "error", "x")
	e.run(n)
	waitFor(t, "the alert", func() bool { return len(e.bot.to(9300)) >= 2 }) // the report, the alert
	time.Sleep(50 * time.Millisecond)
	got := e.bot.to(9300)
	alerts := 0
	for _, m := range got {
		if strings.Contains(m, "Error en") {
			alerts++
			if !strings.Contains(m, "reconcile: plane_failed: wireguard: device down") {
				t.Errorf("alert %q", m)
			}
		}
	}
	if alerts != 1 || !strings.Contains(buf.String(), "plane_failed") {
		t.Fatalf("messages %q", got)
	}
}
