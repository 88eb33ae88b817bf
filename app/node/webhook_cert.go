package node

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"time"

	"github.com/usipipo/usipipo/app/pay"
)

// webhookCertCheckEvery is how often the webhook's registration looks at
// --tls-cert for a rotation; the public listener checks as often.
const webhookCertCheckEvery = time.Minute

// webhookCert is what setWebhook needs to know of the public listener's
// certificate (--tls-cert): its leaf, and whether Telegram must be given it.
type webhookCert struct {
	leaf *x509.Certificate
	// upload: the leaf is self-signed and no trusted root vouches for it,
	// so Telegram accepts it only when its PEM comes with setWebhook.
	upload bool
	// untrusted: neither self-signed nor verifiable by the roots (a private
	// CA or a missing intermediate): Telegram will refuse it either way.
	untrusted bool
}

// loadWebhookCert reads the certificate and key files as the public
// listener does (so a half-written rotation fails here too and is retried
// later) and classifies the leaf. roots nil means the system's. The key is
// read only to check the pair; nothing of it is kept.
func loadWebhookCert(certFile, keyFile string, roots *x509.CertPool) (webhookCert, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return webhookCert{}, fmt.Errorf("telegram webhook: loading --tls-cert/--tls-key: %w", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return webhookCert{}, fmt.Errorf("telegram webhook: --tls-cert: %w", err)
	}
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	// Trust only, not the name: the host is checked by Telegram, and doctor
	// says when it does not match.
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter}); err == nil {
		return webhookCert{leaf: leaf}, nil
	}
	if SelfSigned(leaf) {
		return webhookCert{leaf: leaf, upload: true}, nil
	}
	return webhookCert{leaf: leaf, untrusted: true}, nil
}

// SelfSigned reports whether c is issued by its own subject and signed by
// its own key. CheckSignatureFrom is not used: it refuses a signer without
// the CA flag, which many self-signed leaves lack.
func SelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// pem is the leaf alone, PEM-encoded: what setWebhook's certificate takes.
func (c webhookCert) pem() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.leaf.Raw})
}

// same reports whether c and o have the same leaf.
func (c webhookCert) same(o webhookCert) bool {
	return c.leaf != nil && o.leaf != nil && bytes.Equal(c.leaf.Raw, o.leaf.Raw)
}

// webhookRegistrar keeps Telegram's webhook registered with the public
// listener's current certificate: plainly for a trusted one (and ACME's),
// with the leaf's PEM uploaded for a self-signed one, and again after a
// rotation of --tls-cert that changes which of the two it needs.
type webhookRegistrar struct {
	api    *pay.BotAPI
	params map[string]any // setWebhook's parameters but the certificate
	log    *slog.Logger
	// certFile and keyFile are --tls-cert and --tls-key; "" is ACME, whose
	// certificates are trusted, so nothing is watched.
	certFile, keyFile string
	roots             *x509.CertPool // nil: the system's

	// Used by run's goroutine alone.
	cert    webhookCert // as last loaded
	lastErr string      // of the last failed load, said once
}

// run registers the webhook, then rechecks the certificate at each tick.
// It returns when ctx ends.
func (r *webhookRegistrar) run(ctx context.Context, ticks <-chan time.Time) {
	if r.register(ctx) != nil || r.certFile == "" {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
		if r.recheck(ctx) != nil {
			return
		}
	}
}

// recheck reloads the certificate files and registers again when the leaf
// changed and the old or the new one is uploaded (between two trusted
// certificates the registration stands). It fails when ctx ends (or the
// parameters cannot be put in a form).
func (r *webhookRegistrar) recheck(ctx context.Context) error {
	next, err := loadWebhookCert(r.certFile, r.keyFile, r.roots)
	if err != nil {
		// Mid-rotation, most likely, and then the next check has the new
		// pair; the listener keeps the old one meanwhile. Said once per
		// error, not every minute, should it last.
		if err.Error() != r.lastErr {
			r.log.Warn("telegram_webhook_cert", "error", err.Error(), "details", "the webhook stays registered with the certificate loaded before")
		}
		r.lastErr = err.Error()
		return nil
	}
	r.lastErr = ""
	if next.same(r.cert) {
		return nil
	}
	needed := next.upload || r.cert.upload
	r.cert = next
	if needed {
		return r.register(ctx)
	}
	return nil
}

// register calls setWebhook until Telegram accepts it (or ctx ends).
func (r *webhookRegistrar) register(ctx context.Context) error {
	url, _ := r.params["url"].(string)
	c := r.cert
	if c.untrusted {
		r.log.Warn("telegram_webhook_cert", "details", "--tls-cert is neither self-signed nor trusted by the system's roots: Telegram will refuse to deliver to it (`usipipo doctor` says more)")
	}
	call := func(ctx context.Context) error { return r.api.Call(ctx, "setWebhook", r.params, nil) }
	if c.upload {
		fields, err := formFields(r.params)
		if err != nil { // not with the parameters webhookIntake gives
			r.log.Error("telegram_setwebhook", "error", err.Error())
			return err
		}
		leafPEM := c.pem()
		call = func(ctx context.Context) error {
			return r.api.Upload(ctx, "setWebhook", fields, "certificate", "certificate.pem", bytes.NewReader(leafPEM), nil)
		}
	}
	err := callUntilDone(ctx, "setWebhook", call, true, r.log)
	if err == nil {
		detail := url
		if c.upload {
			detail += fmt.Sprintf("; self-signed certificate uploaded (valid until %s)", c.leaf.NotAfter.Format(time.DateOnly))
		}
		r.log.Info("telegram_webhook_set", "details", detail)
	}
	return err
}

// formFields turns JSON call parameters into multipart text fields: strings
// as they are, anything else (arrays, booleans) JSON-encoded, as the Bot API
// reads them in a form.
func formFields(params map[string]any) (map[string]string, error) {
	out := make(map[string]string, len(params))
	for k, v := range params {
		if s, ok := v.(string); ok {
			out[k] = s
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("telegram setWebhook: encoding %s: %w", k, err)
		}
		out[k] = string(b)
	}
	return out, nil
}
