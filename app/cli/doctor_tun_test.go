package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestDoctorTunChecks: with --wg-mode tun the doctor reports each of tun
// mode's needs (failing what is missing); with netstack it needs none.
func TestDoctorTunChecks(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d")
	if code, _, errs := runCLI(t, nil, "init", "--data", data); code != 0 {
		t.Fatal(errs)
	}
	doctorFindings := func(mode string) map[string][]finding {
		_, out, _ := runCLI(t, nil, "doctor", "--json", "--data", data, "--http", "127.0.0.1:0", "--wg-listen", "127.0.0.1:0",
			"--ss-listen", "127.0.0.1:0", "--mtproto-listen", "127.0.0.1:0", "--wg-mode", mode)
		var fs []finding
		if err := json.Unmarshal([]byte(out), &fs); err != nil {
			t.Fatalf("doctor --json: %v\n%s", err, out)
		}
		by := map[string][]finding{}
		for _, f := range fs {
			if strings.HasPrefix(f.Check, "tun") || f.Check == "wg mode" {
				by[f.Check] = append(by[f.Check], f)
			}
		}
		return by
	}
	ns := doctorFindings("netstack")
	if len(ns) != 1 || ns["tun"][0].Level != "ok" || !strings.Contains(ns["tun"][0].Detail, "netstack") {
		t.Errorf("netstack: %+v", ns)
	}
	tun := doctorFindings("tun")
	for _, check := range []string{"tun", "tun cap", "tun fw", "tun fwd"} {
		fs := tun[check]
		if len(fs) == 0 {
			t.Errorf("--wg-mode tun: no %q finding in %+v", check, tun)
			continue
		}
		for _, f := range fs {
			if f.Level != "ok" && (f.Level != "fail" || f.Fix == "") {
				t.Errorf("--wg-mode tun: %+v (a lack must fail and say how to fix it)", f)
			}
		}
	}
	// Everything ok means tun mode can run, and the doctor says so.
	allOK := true
	for _, fs := range tun {
		for _, f := range fs {
			allOK = allOK && f.Level == "ok"
		}
	}
	if allOK != (len(tun["wg mode"]) == 1) {
		t.Errorf("the verdict does not follow the checks: %+v", tun)
	}
}
