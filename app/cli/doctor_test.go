package cli

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDoctorSaysWhatToFix(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d")
	if code, _, errs := runCLI(t, nil, "init", "--data", data); code != 0 {
		t.Fatal(errs)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	os.Chmod(filepath.Join(data, "node.key"), 0o644)
	os.Chmod(data, 0o755)
	args := []string{"doctor", "--json", "--data", data, "--http", busy.Addr().String(), "--wg-listen", "127.0.0.1:0",
		"--ss-listen", "127.0.0.1:0", "--mtproto-listen", "127.0.0.1:0"}
	code, out, errs := runCLI(t, nil, args...)
	var fs []finding
	if err := json.Unmarshal([]byte(out), &fs); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, out)
	}
	if code != 1 || !strings.Contains(errs, "problem") {
		t.Fatalf("exit %d, %q", code, errs)
	}
	want := map[string]string{"node.key": "chmod 600", "port http": "in use", "data dir": "chmod 700", "database": ""}
	for _, f := range fs {
		w, ok := want[f.Check]
		if !ok {
			continue
		}
		delete(want, f.Check)
		switch {
		case f.Check == "database" && f.Level != "ok":
			t.Errorf("database: %+v", f)
		case w != "" && !strings.Contains(f.Fix+f.Detail, w):
			t.Errorf("%s: %+v, want a finding mentioning %q", f.Check, f, w)
		}
	}
	if len(want) > 0 {
		t.Errorf("no finding for %v in %s", want, out)
	}
	// Fixed, it is healthy (clock and tun depend on the machine: not failures here).
	os.Chmod(filepath.Join(data, "node.key"), 0o600)
	os.Chmod(data, 0o700)
	args[5] = "127.0.0.1:0" // the --http value
	_, out, _ = runCLI(t, nil, args...)
	json.Unmarshal([]byte(out), &fs)
	for _, f := range fs {
		if f.Level == "fail" && f.Check != "disk" {
			t.Errorf("after the fixes: %+v", f)
		}
	}
}
