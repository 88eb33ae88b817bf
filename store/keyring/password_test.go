package keyring

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

var phcRE = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashPasswordDefault(t *testing.T) {
	h, err := HashPassword(nil, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !phcRE.MatchString(h) {
		t.Fatalf("hash %q does not match the expected PHC format", h)
	}
	if ok, err := VerifyPassword(h, "correct horse"); !ok || err != nil {
		t.Fatalf("verify: %v %v", ok, err)
	}
	if ok, err := VerifyPassword(h, "correct horsE"); ok || err != nil {
		t.Fatalf("wrong password: %v %v", ok, err)
	}
	if PasswordNeedsRehash(h) {
		t.Error("fresh default hash needs rehash")
	}
	h1, _ := hashPassword(nil, "correct horse", cheapArgon)
	h2, _ := hashPassword(nil, "correct horse", cheapArgon)
	if h1 == h2 {
		t.Error("two hashes equal: salt not random")
	}
}

// The reference implementation's argon2id vector (phc-winner-argon2 test.c):
// a hash made elsewhere, with other parameters, verifies here.
func TestVerifyPasswordReferenceVector(t *testing.T) {
	const ref = "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"
	if ok, err := VerifyPassword(ref, "password"); !ok || err != nil {
		t.Fatalf("reference vector: %v %v", ok, err)
	}
	if ok, _ := VerifyPassword(ref, "passwore"); ok {
		t.Fatal("reference vector accepts wrong password")
	}
	if !PasswordNeedsRehash(ref) {
		t.Error("non-default params should need rehash")
	}
}

func TestPasswordCheapRoundTrip(t *testing.T) {
	for _, pw := range []string{"", "a", "pässwörd", strings.Repeat("x", 10000), "with\x00nul"} {
		h, err := hashPassword(detRand(1), pw, cheapArgon)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := VerifyPassword(h, pw); !ok || err != nil {
			t.Fatalf("%q: %v %v", pw, ok, err)
		}
		if ok, _ := VerifyPassword(h, pw+"!"); ok {
			t.Fatalf("%q: accepts another password", pw)
		}
	}
	if _, err := HashPassword(errReader{errors.New("boom")}, "x"); err == nil {
		t.Fatal("failing rand accepted")
	}
}

func TestVerifyPasswordHostile(t *testing.T) {
	const s, h = "c29tZXNhbHQ", "nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"
	phc := func(mid string) string { return "$argon2id$v=19$" + mid + "$" + s + "$" + h }
	hostile := map[string]string{
		"empty":          "",
		"dollar":         "$",
		"bcrypt":         "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"argon2i":        "$argon2i$v=19$m=256,t=2,p=1$" + s + "$" + h,
		"argon2d":        "$argon2d$v=19$m=256,t=2,p=1$" + s + "$" + h,
		"v16":            "$argon2id$v=16$m=256,t=2,p=1$" + s + "$" + h,
		"no version":     "$argon2id$m=256,t=2,p=1$" + s + "$" + h,
		"huge m":         phc("m=4294967295,t=2,p=1"),
		"m over bound":   phc("m=65537,t=1,p=1"),
		"m overflow":     phc("m=99999999999,t=2,p=1"),
		"huge t":         phc("m=256,t=4294967295,p=1"),
		"t over bound":   phc("m=256,t=17,p=1"),
		"huge p":         phc("m=256,t=2,p=255"),
		"p 256 wraps":    phc("m=4096,t=2,p=256"),
		"zero m":         phc("m=0,t=2,p=1"),
		"zero t":         phc("m=256,t=0,p=1"),
		"zero p":         phc("m=256,t=2,p=0"),
		"m below 8p":     phc("m=15,t=1,p=2"),
		"negative":       phc("m=-256,t=2,p=1"),
		"plus sign":      phc("m=+256,t=2,p=1"),
		"leading zero":   phc("m=0256,t=2,p=1"),
		"hex":            phc("m=0x100,t=2,p=1"),
		"spaces":         phc("m=256, t=2,p=1"),
		"reordered":      phc("t=2,m=256,p=1"),
		"missing p":      phc("m=256,t=2"),
		"extra param":    phc("m=256,t=2,p=1,keyid=x"),
		"dup":            phc("m=256,m=256,p=1"),
		"empty params":   phc(""),
		"bad salt b64":   "$argon2id$v=19$m=256,t=2,p=1$c29tZX*hbHQ$" + h,
		"padded salt":    "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ=$" + h,
		"short salt":     "$argon2id$v=19$m=256,t=2,p=1$c29tZQ$" + h,
		"empty salt":     "$argon2id$v=19$m=256,t=2,p=1$$" + h,
		"short hash":     "$argon2id$v=19$m=256,t=2,p=1$" + s + "$nf65EOgLrQMR",
		"empty hash":     "$argon2id$v=19$m=256,t=2,p=1$" + s + "$",
		"no hash":        "$argon2id$v=19$m=256,t=2,p=1$" + s,
		"extra field":    phc("m=256,t=2,p=1") + "$x",
		"noncanon b64":   "$argon2id$v=19$m=256,t=2,p=1$" + s + "$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/5",
		"url b64":        "$argon2id$v=19$m=256,t=2,p=1$" + s + "$nf65EOgLrQMR_uIPnA4rEsF5h7TKyQwu9U1bMCHGi_4",
		"huge hash":      "$argon2id$v=19$m=256,t=2,p=1$" + s + "$" + strings.Repeat("A", 200),
		"megabyte":       phc("m=256,t=2,p=1") + strings.Repeat("A", 1<<20),
		"no leading $":   "argon2id$v=19$m=256,t=2,p=1$" + s + "$" + h,
		"trailing space": phc("m=256,t=2,p=1") + " ",
		"newline":        phc("m=256,t=2,p=1") + "\n",
		"inner newline":  "$argon2id$v=19$m=256,t=2,p=1$c29t\nZXNhbHQ$" + h,
	}
	for name, enc := range hostile {
		ok, err := VerifyPassword(enc, "password")
		if ok || !errors.Is(err, ErrBadHash) {
			t.Errorf("%s: ok=%v err=%v, want ErrBadHash", name, ok, err)
		}
		if !PasswordNeedsRehash(enc) {
			t.Errorf("%s: malformed hash should need rehash", name)
		}
	}
	// Within bounds but not the default: accepted (params may change).
	if _, err := VerifyPassword(phc("m=65536,t=1,p=8"), "x"); err != nil {
		t.Errorf("upper bounds refused: %v", err)
	}
}
