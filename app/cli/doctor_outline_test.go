package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/usipipo/usipipo/app/config"
)

// The line itself, and that it survives restarts, is checked with a running
// node in app/node (TestPublicListenerEndToEnd).
func TestDoctorOutlineAPIFinding(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d")
	cfg, err := config.Parse([]string{"--data", data}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fs := checkOutlineAPI(cfg); fs != nil {
		t.Fatalf("outline API off, yet: %+v", fs)
	}
	cfg.OutlineAPI = "0.0.0.0:8181"
	fs := checkOutlineAPI(cfg)
	if len(fs) != 1 || fs[0].Level != "warn" || !strings.Contains(fs[0].Detail, "start the node once") {
		t.Fatalf("before the node made the certificate: %+v", fs)
	}
}
