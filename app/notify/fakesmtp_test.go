package notify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"io"
	"math/big"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSMTP is a small SMTP server speaking the real protocol (RFC 5321)
// with STARTTLS (RFC 3207) under a self-signed certificate and AUTH PLAIN,
// which it accepts only over TLS, as real submission servers do.
type fakeSMTP struct {
	addr     string
	roots    *x509.CertPool // trusts the server's certificate
	user     string
	password string
	noTLS    bool // do not offer STARTTLS

	mu   sync.Mutex
	mail []fakeMail
}

type fakeMail struct {
	From, To string
	Data     string
	TLS      bool
	AuthUser string
}

func newFakeSMTP(t testing.TB) *fakeSMTP {
	cert, roots := selfSigned(t, "127.0.0.1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeSMTP{addr: ln.Addr().String(), roots: roots, user: "notify", password: "s3cret-pass"}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	var wg sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { s.session(c, cfg) })
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return s
}

func (s *fakeSMTP) messages() []fakeMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]fakeMail(nil), s.mail...)
}

func (s *fakeSMTP) session(c net.Conn, cfg *tls.Config) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	tp := textproto.NewConn(c)
	tp.PrintfLine("220 fake.smtp ESMTP ready")
	var m fakeMail
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			exts := []string{"fake.smtp", "8BITMIME"}
			if !m.TLS && !s.noTLS {
				exts = append(exts, "STARTTLS")
			}
			if m.TLS {
				exts = append(exts, "AUTH PLAIN")
			}
			for i, e := range exts {
				sep := "-"
				if i == len(exts)-1 {
					sep = " "
				}
				tp.PrintfLine("250%s%s", sep, e)
			}
		case "STARTTLS":
			if m.TLS || s.noTLS {
				tp.PrintfLine("503 5.5.1 TLS already active")
				continue
			}
			tp.PrintfLine("220 2.0.0 go ahead")
			tc := tls.Server(c, cfg)
			if tc.Handshake() != nil {
				return
			}
			c, tp = tc, textproto.NewConn(tc)
			m = fakeMail{TLS: true} // RFC 3207: forget everything from before
		case "AUTH":
			mech, resp, _ := strings.Cut(arg, " ")
			if !m.TLS || !strings.EqualFold(mech, "PLAIN") {
				tp.PrintfLine("538 5.7.11 encryption required")
				continue
			}
			b, _ := base64.StdEncoding.DecodeString(resp)
			parts := strings.Split(string(b), "\x00")
			if len(parts) != 3 || parts[1] != s.user || parts[2] != s.password {
				tp.PrintfLine("535 5.7.8 authentication failed")
				continue
			}
			m.AuthUser = parts[1]
			tp.PrintfLine("235 2.7.0 authenticated")
		case "MAIL":
			if s.user != "" && m.AuthUser == "" {
				tp.PrintfLine("530 5.7.0 authentication required")
				continue
			}
			m.From = pathArg(arg, "FROM:")
			tp.PrintfLine("250 2.1.0 ok")
		case "RCPT":
			m.To = pathArg(arg, "TO:")
			tp.PrintfLine("250 2.1.5 ok")
		case "DATA":
			tp.PrintfLine("354 end with <CRLF>.<CRLF>")
			b, err := io.ReadAll(tp.DotReader())
			if err != nil {
				return
			}
			m.Data = string(b)
			s.mu.Lock()
			s.mail = append(s.mail, m)
			s.mu.Unlock()
			m = fakeMail{TLS: m.TLS, AuthUser: m.AuthUser}
			tp.PrintfLine("250 2.0.0 queued")
		case "QUIT":
			tp.PrintfLine("221 2.0.0 bye")
			return
		default:
			tp.PrintfLine("502 5.5.2 unknown command")
		}
	}
}

// selfSigned makes a certificate for host and a pool that trusts it.
func selfSigned(t testing.TB, host string) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP(host)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// pathArg reads the address of "FROM:<a@b> BODY=8BITMIME" or "TO:<a@b>".
func pathArg(arg, prefix string) string {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return ""
	}
	p, _, _ := strings.Cut(arg[len(prefix):], " ")
	return strings.Trim(p, "<>")
}

func tlsTrusting(s *fakeSMTP) *tls.Config { return &tls.Config{RootCAs: s.roots} }
