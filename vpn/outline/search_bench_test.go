package outline

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"testing"

	"github.com/usipipo/usipipo/store/model"
)

// testKeySet builds n keys of one method; key i has password "pw-i".
func testKeySet(t testing.TB, n int, method string) *keySet {
	list := make([]*keyEntry, n)
	for i := range list {
		c, err := NewCipher(method, fmt.Sprint("pw-", i))
		if err != nil {
			t.Fatal(err)
		}
		st := newKeyState(fmt.Sprint("k", i))
		st.configure(&keyConfig{cipher: c, limits: model.Limits{}, budget: ^uint64(0)}, testNow)
		list[i] = &keyEntry{st: st, c: c}
	}
	return newKeySet(list)
}

// streamHead is what a client of key e sends first, as far as the search reads.
func streamHead(t testing.TB, c *Cipher) []byte {
	var wire bytes.Buffer
	salt := make([]byte, c.SaltSize())
	rand.Read(salt)
	w, _ := NewStreamWriter(&wire, c, salt)
	w.Write(AppendAddr(nil, Addr{Host: "example.com", Port: 443}))
	return wire.Bytes()[:c.SaltSize()+lenChunkSize]
}

func TestTenThousandKeysEachFound(t *testing.T) {
	// A spread sample by default (every key costs n²/2 trials, over a
	// minute); every key with USIPIPO_OUTLINE_ALL_KEYS=1.
	n, step := 10000, 97
	if testing.Short() {
		step = 997
	}
	if os.Getenv("USIPIPO_OUTLINE_ALL_KEYS") == "1" {
		step = 1
	}
	set := testKeySet(t, n, DefaultMethod)
	for i := 0; i < n; i += step {
		checkFound(t, set, i)
	}
	checkFound(t, set, n-1)
	// Returning: the cached key costs one trial.
	head := streamHead(t, set.list[n-1].c)
	if m, trials, ok := set.search("k9999", tcpTrials(head)); !ok || trials != 1 || m.e != set.list[n-1] {
		t.Fatalf("returning client: %d trials", trials)
	}
	// Nobody's key: every key tried once, nothing found.
	other, _ := NewCipher(DefaultMethod, "nobody")
	head = streamHead(t, other)
	if _, trials, ok := set.search("", tcpTrials(head)); ok || trials != n {
		t.Fatalf("unknown key: found %v after %d trials", ok, trials)
	}
}

func checkFound(t *testing.T, set *keySet, i int) {
	t.Helper()
	head := streamHead(t, set.list[i].c)
	m, _, ok := set.search("", tcpTrials(head))
	if !ok || m.e != set.list[i] || m.n == 0 {
		t.Fatalf("key %d not found", i)
	}
}

// BenchmarkKeySearch is the per-connection search cost. "first" is a client
// whose key is the last one tried (the worst case, and what a probe or a
// wrong key costs); "returning" is a client whose last key is cached.
func BenchmarkKeySearch(b *testing.B) {
	for _, method := range []string{DefaultMethod, "aes-256-gcm"} {
		for _, n := range []int{1, 100, 1000, 10000} {
			set := testKeySet(b, n, method)
			last := set.list[n-1]
			head := streamHead(b, last.c)
			try := tcpTrials(head)
			b.Run(fmt.Sprintf("%s/keys=%d/first", method, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, _, ok := set.search("", try); !ok {
						b.Fatal("not found")
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/key")
			})
			b.Run(fmt.Sprintf("%s/keys=%d/returning", method, n), func(b *testing.B) {
				for b.Loop() {
					if _, _, ok := set.search(last.st.id, try); !ok {
						b.Fatal("not found")
					}
				}
			})
		}
	}
}

// BenchmarkTrial is one wrong-key trial of a search, against the baseline of
// deriving the subkey with golang.org/x/crypto/hkdf and opening the length
// with a fresh AEAD (what each trial would cost without the deriver).
func BenchmarkTrial(b *testing.B) {
	for _, method := range Methods() {
		c, _ := NewCipher(method, "wrong")
		right, _ := NewCipher(method, "right")
		head := streamHead(b, right)
		ss := c.SaltSize()
		b.Run(method+"/deriver", func(b *testing.B) {
			b.ReportAllocs()
			d := newDeriver(head[:ss])
			for b.Loop() {
				if _, _, ok := d.tryLength(c, head[ss:]); ok {
					b.Fatal("wrong key opened")
				}
			}
		})
		b.Run(method+"/baseline-xcrypto-hkdf", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				aead, _ := c.aead(head[:ss])
				if _, err := openLength(aead, zeroNonce[:], head[ss:]); err == nil {
					b.Fatal("wrong key opened")
				}
			}
		})
	}
}
