package node

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/usipipo/usipipo/app/config"
	"github.com/usipipo/usipipo/app/logging"
	"github.com/usipipo/usipipo/vpn/outline"
)

// The Outline Manager API (--outline-api) is served as Outline's own server
// does it: HTTPS with a self-signed certificate that the app pins by its
// SHA-256, under a secret random path. Both are made once and kept in
// DATA/outline-api/ (directory 0700, files 0600), so the app keeps working
// across restarts and upgrades.
const (
	mgmtDirName  = "outline-api"
	mgmtCertFile = "cert.pem"
	mgmtKeyFile  = "key.pem"
	mgmtPathFile = "path"
)

// mgmtServer is the running management API.
type mgmtServer struct {
	app  *fiber.App
	addr net.Addr
	done chan struct{}
}

// mgmtAccess is what Outline Manager needs to reach the node.
type mgmtAccess struct {
	cert   tls.Certificate
	sha256 string // upper-case hex of the DER certificate
	path   string // secret path prefix, without the slash
}

// startOutlineAPI serves the Outline Manager API on --outline-api.
func (n *Node) startOutlineAPI(stops *[]func(context.Context)) error {
	cfg := n.Config
	if cfg.OutlineAPI == "" {
		return nil
	}
	acc, err := loadOrCreateMgmt(cfg.Data, n.endpoints().PublicHost, rand.Reader, time.Now())
	if err != nil {
		return fmt.Errorf("--outline-api: %w", err)
	}
	ln, err := n.Listen.Listen("tcp", cfg.OutlineAPI)
	if err != nil {
		return fmt.Errorf("--outline-api %s: %w", cfg.OutlineAPI, err)
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true, ReadTimeout: 15 * time.Second, WriteTimeout: 30 * time.Second,
		IdleTimeout: 120 * time.Second, BodyLimit: 1 << 20, ErrorHandler: mgmtError})
	outline.MountManagement(app.Group("/"+acc.path), n.Service.OutlineManager(n.version))
	m := &mgmtServer{app: app, addr: ln.Addr(), done: make(chan struct{})}
	n.pub.mgmt = m
	tl := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{acc.cert}, MinVersion: tls.VersionTLS12})
	n.noteFixedCert(certOutlineAPI, acc.cert)
	log := logging.ForService(n.Log, "outline-api")
	go func() {
		defer close(m.done)
		if err := app.Listener(tl); err != nil {
			log.Error("outline_api_stopped", "error", err.Error())
		}
	}()
	*stops = append(*stops, func(sctx context.Context) { app.ShutdownWithContext(sctx); <-m.done })
	log.Info("outline_api_ready", "details", "`usipipo doctor` prints the line to paste into Outline Manager")
	return nil
}

// mgmtError answers what no route takes as Outline's server does, in its
// {"code", "message"} shape, naming no framework.
func mgmtError(c *fiber.Ctx, err error) error {
	code, name := fiber.StatusInternalServerError, "InternalServer"
	var fe *fiber.Error
	if errors.As(err, &fe) && fe.Code < 500 {
		code, name = fe.Code, "ResourceNotFound"
		if code != fiber.StatusNotFound && code != fiber.StatusMethodNotAllowed {
			name = "BadRequest"
		}
	}
	return c.Status(code).JSON(fiber.Map{"code": name, "message": http.StatusText(code)})
}

// OutlineAPIAddr is the bound address of --outline-api (nil when off).
func (n *Node) OutlineAPIAddr() net.Addr {
	if n.pub.mgmt == nil {
		return nil
	}
	return n.pub.mgmt.addr
}

// loadOrCreateMgmt reads the management certificate and path, making them
// the first time. They are written to a temporary directory renamed into
// place, so a crash never leaves half of them.
func loadOrCreateMgmt(data, host string, rnd io.Reader, now time.Time) (mgmtAccess, error) {
	dir := filepath.Join(data, mgmtDirName)
	acc, err := loadMgmt(dir)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return acc, err
	}
	cert, _, err := outline.ManagementCert(host, rnd, now)
	if err != nil {
		return mgmtAccess{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		return mgmtAccess{}, fmt.Errorf("management key: %w", err)
	}
	secret := make([]byte, 16)
	if _, err := io.ReadFull(rnd, secret); err != nil {
		return mgmtAccess{}, fmt.Errorf("management path: %w", err)
	}
	tmp, err := os.MkdirTemp(data, ".outline-api-")
	if err != nil {
		return mgmtAccess{}, err
	}
	defer os.RemoveAll(tmp)
	files := map[string][]byte{
		mgmtCertFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}),
		mgmtKeyFile:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		mgmtPathFile: []byte(base64.RawURLEncoding.EncodeToString(secret) + "\n"),
	}
	for name, b := range files {
		if err := writeSynced(filepath.Join(tmp, name), b); err != nil {
			return mgmtAccess{}, err
		}
	}
	if err := os.Chmod(tmp, 0o700); err != nil {
		return mgmtAccess{}, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return mgmtAccess{}, fmt.Errorf("management API files: %w", err)
	}
	return loadMgmt(dir)
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// loadMgmt reads DATA/outline-api; a missing directory is fs.ErrNotExist.
func loadMgmt(dir string) (mgmtAccess, error) {
	if _, err := os.Stat(dir); err != nil {
		return mgmtAccess{}, err
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, mgmtCertFile), filepath.Join(dir, mgmtKeyFile))
	if err != nil {
		return mgmtAccess{}, fmt.Errorf("management API certificate in %s: %w", dir, err)
	}
	p, err := os.ReadFile(filepath.Join(dir, mgmtPathFile))
	if err != nil {
		return mgmtAccess{}, fmt.Errorf("management API path: %w", err)
	}
	path := strings.TrimSpace(string(p))
	if len(path) < 16 || strings.ContainsAny(path, "/?#%") {
		return mgmtAccess{}, fmt.Errorf("management API path in %s is malformed", dir)
	}
	sum := sha256.Sum256(cert.Certificate[0])
	return mgmtAccess{cert: cert, sha256: strings.ToUpper(hex.EncodeToString(sum[:])), path: path}, nil
}

// OutlineAPIAccess is the JSON line to paste into Outline Manager for the
// node of cfg: {"apiUrl": "https://HOST:PORT/SECRET", "certSha256": "…"}.
// It reads what the node made on its first start with --outline-api and
// creates nothing; an error says why there is no line.
func OutlineAPIAccess(cfg *config.Config) (string, error) {
	if cfg.OutlineAPI == "" {
		return "", errors.New("the Outline Manager API is off (--outline-api)")
	}
	acc, err := loadMgmt(filepath.Join(cfg.Data, mgmtDirName))
	if errors.Is(err, fs.ErrNotExist) {
		return "", errors.New("not created yet: start the node once with --outline-api")
	}
	if err != nil {
		return "", err
	}
	host := cfg.PublicHost
	if host == "" {
		host = guessPublicHost()
	}
	b, err := json.Marshal(struct {
		APIURL     string `json:"apiUrl"`
		CertSha256 string `json:"certSha256"`
	}{"https://" + net.JoinHostPort(host, strconv.Itoa(port(cfg.OutlineAPI))) + "/" + acc.path, acc.sha256})
	return string(b), err
}
