package bot

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/usipipo/usipipo/app/bot/bottest"
	"github.com/usipipo/usipipo/app/bot/i18n"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// Both catalogues have the same keys with the same placeholders, and every
// key the code names exists.
func TestCatalogues(t *testing.T) {
	c, err := i18n.Load()
	if err != nil {
		t.Fatal(err)
	}
	es, en := c.Keys(i18n.Spanish), c.Keys(i18n.English)
	if !slices.Equal(es, en) {
		t.Fatalf("catalogues differ:\nes %v\nen %v", es, en)
	}
	for _, k := range es {
		if !slices.Equal(c.Placeholders(i18n.Spanish, k), c.Placeholders(i18n.English, k)) {
			t.Errorf("%s: placeholders differ", k)
		}
	}
	files, _ := filepath.Glob("*.go")
	used := regexp.MustCompile(`(?:\.t|\.T\([a-zA-Z.]+,|say|notifyAdmins\([a-zA-Z.]+,) ?\(?"([a-z_]+\.[a-z_.]+)"`)
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, _ := os.ReadFile(f)
		for _, m := range used.FindAllStringSubmatch(string(src), -1) {
			n++
			if !c.Has(m[1]) {
				t.Errorf("%s names %q, missing from the catalogues", f, m[1])
			}
		}
	}
	for _, e := range userErrors {
		if !c.Has(e.key) {
			t.Errorf("error key %q missing", e.key)
		}
	}
	for _, st := range []model.KeyStatus{model.KeyActive, model.KeySuspended, model.KeyRevoked, model.KeyExpired} {
		if !c.Has("status." + string(st)) {
			t.Errorf("status %s has no text", st)
		}
	}
	if n < 100 {
		t.Fatalf("found only %d catalogue uses: the scan is broken", n)
	}
	if i18n.Lang("en-GB") != "en" || i18n.Lang("pt-BR") != "es" || i18n.Lang("") != "es" {
		t.Fatal("language mapping")
	}
	if got := c.T("en", "buy.price", "stars", 5, "usd", "1.00"); got != "5 ⭐ / $1.00" {
		t.Fatalf("rendering: %q", got)
	}
}

// /start registers in the user's Telegram language, with the inviter's
// referral code; the language can be changed; the profile shows the
// referral link.
func TestStartLanguageReferralProfile(t *testing.T) {
	w := newWorld(t)
	alice := w.chat(1001, "en")
	evs := alice.send("/start")
	mustContain(t, evs, "Welcome to uSipipo")
	a, err := w.st.UserByTelegram(1001)
	if err != nil || a.Language != "en" {
		t.Fatalf("alice: %+v %v", a, err)
	}
	bob := w.chat(1002, "es-ES")
	evs = bob.send("/start " + strings.ToUpper(a.ReferralCode))
	mustContain(t, evs, "Bienvenido")
	b, err := w.st.UserByTelegram(1002)
	if err != nil || b.ReferredBy != a.ID || b.Language != "es" {
		t.Fatalf("bob: %+v %v", b, err)
	}
	evs = alice.press(alice.send("/menu"), "Referrals")
	mustContain(t, evs, "Invited: 1 (paid: 0)", "https://t.me/usipipo_test_bot?start="+a.ReferralCode)

	evs = alice.send("/lang")
	evs = alice.press(evs, "Español")
	mustContain(t, evs, "Idioma cambiado")
	if u, _ := w.st.UserByTelegram(1001); u.Language != "es" {
		t.Fatalf("language stored: %q", u.Language)
	}
	evs = alice.send("/profile")
	mustContain(t, evs, "Tu perfil", "sin plan", "Créditos: 0", "?start="+a.ReferralCode)
	// A plain message outside any flow gets a hint, an unknown command a
	// pointer to /help.
	mustContain(t, alice.send("hola"), "No entendí")
	mustContain(t, alice.send("/nope"), "Comando desconocido")
}

// A free trial per protocol, then the key's whole life from the bot: its
// config again, rename (a flow that survives a restart), rotate, revoke.
func TestTrialAndMyKeys(t *testing.T) {
	w := newWorld(t)
	c := w.chat(2001, "es")
	c.send("/start")
	evs := c.press(c.send("/trial"), "WireGuard")
	doc, photo := find(evs, "sendDocument"), find(evs, "sendPhoto")
	if doc == nil || photo == nil || !strings.HasSuffix(doc.File.Name, ".conf") || !strings.Contains(string(doc.File.Data), "[Peer]") {
		t.Fatalf("no WireGuard config + QR:\n%s", dump(evs))
	}
	if !slices.Equal(photo.File.Data[:4], []byte("\x89PNG")) {
		t.Fatal("the QR code is not a PNG")
	}
	u, _ := w.st.UserByTelegram(2001)
	ks, _, _ := w.st.Keys(store.KeyFilter{UserID: u.ID}, store.Page{Limit: 10})
	if len(ks) != 1 || !ks[0].Trial || ks[0].Type != model.WireGuard {
		t.Fatalf("keys: %+v", ks)
	}
	key := ks[0]
	// Outline trial: an ss:// link and its QR.
	evs = c.press(c.send("/trial"), "Outline")
	mustContain(t, evs, "ss://")
	// The WireGuard trial is gone from the offer; asking again is refused.
	evs = c.send("/trial")
	if _, ok := menuOf(evs).FindButton("WireGuard"); ok {
		t.Fatal("a used trial is offered again")
	}

	// My keys → the key's card → config again.
	evs = c.press(c.send("/keys"), key.Name)
	mustContain(t, evs, "Protocolo: WireGuard", key.ID)
	card := evs
	if evs = c.press(card, "Configuración"); find(evs, "sendDocument") == nil {
		t.Fatalf("config again:\n%s", dump(evs))
	}
	first := string(find(evs, "sendDocument").File.Data)

	// Rename: the bot asks, restarts, and the answer still lands.
	mustContain(t, c.press(card, "Renombrar"), "nuevo nombre")
	w.newBot()
	mustContain(t, c.send("portátil"), "renombrada a «portátil»")
	if k, _ := w.st.Key(key.ID); k.Name != "portátil" {
		t.Fatalf("name: %q", k.Name)
	}
	// /cancel ends a flow: the next text is not taken as a name.
	c.press(card, "Renombrar")
	mustContain(t, c.send("/cancel"), "cancelada")
	mustContain(t, c.send("otro"), "No entendí")

	// Rotate: a new config; the old private key is gone.
	evs = c.press(card, "Rotar")
	rotated := find(evs, "sendDocument")
	if rotated == nil || string(rotated.File.Data) == first {
		t.Fatalf("rotation sent no new config:\n%s", dump(evs))
	}
	// Revoke asks first.
	evs = c.press(card, "Revocar")
	mustContain(t, evs, "¿Revocar")
	mustContain(t, c.press(evs, "Sí, revocar"), "revocada")
	if k, _ := w.st.Key(key.ID); k.Status != model.KeyRevoked {
		t.Fatalf("status: %s", k.Status)
	}
	// Usage lists what is left.
	mustContain(t, c.send("/usage"), "Outline")
}

// Buttons are bound to the user they were sent to and cannot be made up.
func TestCallbackForgery(t *testing.T) {
	w := newWorld(t)
	a, b := w.chat(3001, "en"), w.chat(3002, "en")
	a.send("/start")
	b.send("/start")
	evs := a.press(a.send("/trial"), "WireGuard")
	ua, _ := w.st.UserByTelegram(3001)
	ks, _, _ := w.st.Keys(store.KeyFilter{UserID: ua.ID}, store.Page{Limit: 10})
	card := a.press(a.send("/keys"), ks[0].Name)
	revoke, _ := menuOf(card).FindButton("Revoke")
	_ = evs
	// Bob replays Alice's revoke button.
	w.deliver(bottest.Press(b.u, 1, revoke.Data))
	got := b.take()
	if ans := findLast(got, "answerCallbackQuery"); ans == nil || !strings.Contains(fmt.Sprint(ans.Params["text"]), "no longer valid") {
		t.Fatalf("a replayed button was not refused:\n%s", dump(got))
	}
	// Alice's own button with a changed argument.
	forged := strings.Replace(revoke.Data, ks[0].ID, strings.Repeat("0", 26), 1)
	w.deliver(bottest.Press(a.u, 1, forged))
	if ans := findLast(a.take(), "answerCallbackQuery"); ans == nil || ans.Params["text"] == nil {
		t.Fatal("a forged button was not refused")
	}
	if k, _ := w.st.Key(ks[0].ID); k.Status != model.KeyActive {
		t.Fatalf("the key changed: %s", k.Status)
	}
	// Garbage of every shape is refused without harm.
	for _, data := range []string{"", "~", "key", strings.Repeat("x", 200), "key:" + ks[0].ID + "~AAAAAAAAAA"} {
		w.deliver(bottest.Press(a.u, 1, data))
	}
}
