package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"strconv"
	"strings"
	"time"
)

// MailOptions configure e-mail delivery. Host and From are required.
type MailOptions struct {
	Host     string // SMTP relay
	Port     int    // default 587 (submission)
	User     string // empty: no authentication
	Password string
	From     string // envelope and header sender
	// TLS, if set, is the STARTTLS configuration (tests trust their own
	// CA with it); by default the system roots verify Host.
	TLS *tls.Config
	// Timeout bounds one whole delivery; default 30 s.
	Timeout time.Duration
}

// mailer delivers e-mail over SMTP, always upgraded with STARTTLS before
// authenticating or sending: a server that does not offer it is refused.
// It dials directly, not through the egress dialer: the node's own mail is
// not tunnelled traffic (the egress policy's mail-port block is about users).
type mailer struct {
	o    MailOptions
	from string // bare address
}

func newMailer(o MailOptions) (*mailer, error) {
	if o.Host == "" || o.From == "" {
		return nil, errors.New("mail: a host and a sender are required")
	}
	from, err := mail.ParseAddress(o.From)
	if err != nil {
		return nil, fmt.Errorf("mail: sender %q: %w", o.From, err)
	}
	if o.Port == 0 {
		o.Port = 587
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	return &mailer{o: o, from: from.Address}, nil
}

// Send delivers one plain-text message to one address.
func (m *mailer) Send(ctx context.Context, to, subject, body string) error {
	rcpt, err := mail.ParseAddress(to)
	if err != nil {
		return fmt.Errorf("mail: recipient: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, m.o.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(m.o.Host, strconv.Itoa(m.o.Port)))
	if err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	c, err := smtp.NewClient(conn, m.o.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("mail: greeting: %w", err)
	}
	defer c.Close()
	if err := m.deliver(c, rcpt.Address, message(m.o.From, rcpt.Address, subject, body)); err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	return nil
}

func (m *mailer) deliver(c *smtp.Client, to string, msg []byte) error {
	if err := c.Hello("localhost"); err != nil {
		return err
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		return ErrNoSTARTTLS
	}
	cfg := &tls.Config{ServerName: m.o.Host, MinVersion: tls.VersionTLS12}
	if m.o.TLS != nil {
		cfg = m.o.TLS.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = m.o.Host
		}
	}
	if err := c.StartTLS(cfg); err != nil {
		return fmt.Errorf("starttls: %w", err)
	}
	if m.o.User != "" {
		if err := c.Auth(smtp.PlainAuth("", m.o.User, m.o.Password, m.o.Host)); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
	}
	if err := c.Mail(m.from); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// message renders a UTF-8 plain-text e-mail with CRLF line ends.
func message(from, to, subject, body string) []byte {
	var b strings.Builder
	h := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	h("From", from)
	h("To", to)
	h("Subject", mime.QEncoding.Encode("utf-8", subject))
	h("Date", time.Now().UTC().Format(time.RFC1123Z))
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "8bit")
	b.WriteString("\r\n")
	body = strings.ReplaceAll(body, "\r\n", "\n")
	b.WriteString(strings.ReplaceAll(body, "\n", "\r\n"))
	b.WriteString("\r\n")
	return []byte(b.String())
}
