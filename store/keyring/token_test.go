package keyring

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"
)

var tokenRE = regexp.MustCompile(`^usp_([a-z2-7]{16})_([a-z2-7]{32})$`)

func TestAPIToken(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		id, secret, tok, err := NewAPIToken(nil)
		if err != nil {
			t.Fatal(err)
		}
		m := tokenRE.FindStringSubmatch(tok)
		if m == nil || m[1] != id || m[2] != secret || len(tok) != TokenLen {
			t.Fatalf("token %q id %q secret %q", tok, id, secret)
		}
		if seen[id] || seen[secret] {
			t.Fatal("repeated id or secret")
		}
		seen[id], seen[secret] = true, true
		pid, psec, err := ParseAPIToken(tok)
		if err != nil || pid != id || psec != secret {
			t.Fatalf("parse: %v", err)
		}
		h := HashSecret(secret)
		if !VerifySecret(h, secret) || VerifySecret(h, secret[:31]+"a") && secret[31] != 'a' {
			t.Fatal("VerifySecret")
		}
	}
	// Deterministic: 80 + 160 bits straight from the reader.
	_, _, a, _ := NewAPIToken(bytes.NewReader(make([]byte, 30)))
	if a != "usp_aaaaaaaaaaaaaaaa_"+strings.Repeat("a", 32) {
		t.Fatalf("zero reader gives %q", a)
	}
	_, _, b, _ := NewAPIToken(bytes.NewReader(bytes.Repeat([]byte{0xff}, 30)))
	if b != "usp_7777777777777777_"+strings.Repeat("7", 32) {
		t.Fatalf("0xff reader gives %q", b)
	}
	if _, _, _, err := NewAPIToken(bytes.NewReader(make([]byte, 29))); err == nil {
		t.Fatal("short reader accepted")
	}
}

func TestParseAPITokenBad(t *testing.T) {
	_, _, good, _ := NewAPIToken(detRand(1))
	bad := []string{
		"", "usp_", "usp__", good[:len(good)-1], good + "a", " " + good, good + "\n",
		"USP_" + good[4:], "usx_" + good[4:], strings.ToUpper(good),
		good[:20] + "-" + good[21:], // separator
		good[:4] + "0" + good[5:],   // 0 is not base32
		good[:4] + "1" + good[5:],
		good[:4] + "8" + good[5:],
		good[:30] + "=" + good[31:],
		good[:30] + "\x00" + good[31:],
		good[:30] + "é" + good[32:],
		"usp_" + strings.Repeat("a", 17) + "_" + strings.Repeat("a", 31),
		"usp_" + strings.Repeat("a", 15) + "_" + strings.Repeat("a", 33),
		"usp_" + strings.Repeat("a", 16) + "_" + strings.Repeat("a", 31) + "_",
	}
	for _, tok := range bad {
		_, _, err := ParseAPIToken(tok)
		if !errors.Is(err, ErrBadToken) {
			t.Errorf("%q: %v", tok, err)
		} else if len(tok) > 8 && strings.Contains(err.Error(), tok[8:]) {
			t.Errorf("error repeats the token")
		}
	}
}

func TestVerifySecret(t *testing.T) {
	h := HashSecret("abc")
	// SHA-256("abc"), FIPS 180-2 test vector.
	if want := "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; hexs(h[:]) != want {
		t.Fatalf("HashSecret(abc) = %s", hexs(h[:]))
	}
	for _, s := range []string{"", "ab", "abd", "abcd", "ABC"} {
		if VerifySecret(h, s) {
			t.Errorf("%q verifies", s)
		}
	}
	if !VerifySecret(h, "abc") {
		t.Error("abc does not verify")
	}
}

func hexs(b []byte) string {
	const d = "0123456789abcdef"
	var sb strings.Builder
	for _, c := range b {
		sb.WriteByte(d[c>>4])
		sb.WriteByte(d[c&15])
	}
	return sb.String()
}

func TestNewPasswordAndPassphrase(t *testing.T) {
	for _, c := range []struct {
		f      func(r interface{ Read([]byte) (int, error) }) (string, error)
		re     *regexp.Regexp
		groups int
	}{
		{func(r interface{ Read([]byte) (int, error) }) (string, error) { return NewPassword(r) },
			regexp.MustCompile(`^[a-z2-7]{4}(-[a-z2-7]{4}){4}$`), passwordGroups},
		{func(r interface{ Read([]byte) (int, error) }) (string, error) { return NewPassphrase(r) },
			regexp.MustCompile(`^[a-z2-7]{4}(-[a-z2-7]{4}){6}$`), passphraseGroups},
	} {
		if bits := c.groups * groupLen * 5; bits < 100 {
			t.Fatalf("only %d bits", bits)
		}
		seen := map[string]bool{}
		counts := map[rune]int{}
		for i := 0; i < 500; i++ {
			p, err := c.f(nil)
			if err != nil {
				t.Fatal(err)
			}
			if !c.re.MatchString(p) || seen[p] {
				t.Fatalf("bad or repeated: %q", p)
			}
			seen[p] = true
			for _, r := range strings.ReplaceAll(p, "-", "") {
				counts[r]++
			}
		}
		if len(counts) != 32 {
			t.Errorf("only %d of 32 symbols used", len(counts))
		}
		if _, err := c.f(errReader{errors.New("boom")}); err == nil {
			t.Error("failing rand accepted")
		}
	}
	// Uniform mapping: byte b and b+32 give the same symbol.
	p1, _ := NewPassword(bytes.NewReader(bytes.Repeat([]byte{5}, 20)))
	p2, _ := NewPassword(bytes.NewReader(bytes.Repeat([]byte{5 + 32*7}, 20)))
	if p1 != p2 || p1 != "ffff-ffff-ffff-ffff-ffff" {
		t.Errorf("%q %q", p1, p2)
	}
}
