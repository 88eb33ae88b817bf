package cli

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app/node"
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

// doctorFindings runs doctor --json and returns its findings by check name
// (a name that repeats, like "port outline", keeps every finding).
func doctorFindings(t *testing.T, env map[string]string, args ...string) map[string][]finding {
	t.Helper()
	_, out, errs := runCLI(t, env, append([]string{"doctor", "--json"}, args...)...)
	var fs []finding
	if err := json.Unmarshal([]byte(out), &fs); err != nil {
		t.Fatalf("doctor --json: %v\n%s\n%s", err, out, errs)
	}
	by := map[string][]finding{}
	for _, f := range fs {
		by[f.Check] = append(by[f.Check], f)
	}
	return by
}

// A seller's shell without the node's environment file: doctor reports the
// sockets the node really holds (port 0 here, so nothing a flag could
// guess), the node's public host and MTProto secrets, and warns that its
// own settings differ.
func TestDoctorReportsRunningNodeNotItsOwnFlags(t *testing.T) {
	n := runNode(t, "")
	by := doctorFindings(t, nil, "--data", n.data)
	want := map[string]int{"port http": 1, "port wireguard": 1, "port outline": 2, "port mtproto": 1}
	for check, count := range want {
		if len(by[check]) != count {
			t.Fatalf("%s: %+v, want %d findings", check, by[check], count)
		}
		for _, f := range by[check] {
			fields := strings.Fields(f.Detail) // "tcp 127.0.0.1:41234 held by…"
			network, addr := fields[0], fields[1]
			if f.Level != "ok" || !strings.Contains(f.Detail, "held by the running node") || strings.HasSuffix(addr, ":0") {
				t.Fatalf("%s: %+v", check, f)
			}
			// The reported socket is real: it is held (the doctor's defaults
			// :8080, :51820, :8388, :8443 are nowhere in it).
			if network == "tcp" {
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err != nil {
					t.Fatalf("%s: %s reported but not listening: %v", check, addr, err)
				}
				c.Close()
			} else if pc, err := net.ListenPacket("udp", addr); err == nil {
				pc.Close()
				t.Fatalf("%s: %s reported but free", check, addr)
			}
		}
	}
	if got := by["port http"][0].Detail; !strings.Contains(got, "tcp "+n.HTTPAddr.String()+" ") {
		t.Errorf("port http: %q, want the node's %s", got, n.HTTPAddr)
	}
	if f := by["public host"]; len(f) != 1 || f[0].Level != "ok" || !strings.Contains(f[0].Detail, "vpn.test") {
		t.Errorf("public host: %+v, want the node's vpn.test", f)
	}
	// The node cloaks ee secrets as its --public-host; the doctor's own
	// settings (no public host) would have said dd.
	if f := by["mtproto"]; len(f) != 1 || f[0].Level != "ok" || !strings.Contains(f[0].Detail, "ee (FakeTLS)") || !strings.Contains(f[0].Detail, "vpn.test") {
		t.Errorf("mtproto: %+v, want the node's ee secrets", f)
	}
	// Tun mode is judged by the node's --wg-mode (netstack), not the doctor's auto.
	if f := by["tun"]; len(f) != 1 || !strings.Contains(f[0].Detail, "--wg-mode netstack") {
		t.Errorf("tun: %+v, want the node's netstack mode", f)
	}
	f := by["settings"]
	if len(f) != 1 || f[0].Level != "warn" {
		t.Fatalf("settings: %+v, want one warning", f)
	}
	for _, s := range []string{`--mtproto-listen ":8443" here, "127.0.0.1:0" in the node`, `--public-host "" here, "vpn.test" in the node`,
		`--wg-mode "auto" here, "netstack" in the node`} {
		if !strings.Contains(f[0].Detail, s) {
			t.Errorf("settings: %q lacks %q", f[0].Detail, s)
		}
	}
	if !strings.Contains(f[0].Fix, "/etc/usipipo/usipipo.env") || !strings.Contains(f[0].Fix, "--data "+n.data) {
		t.Errorf("settings fix: %q", f[0].Fix)
	}
}

// With the node's settings (here from USIPIPO_* variables, as an env file
// sourced into the shell gives them) doctor finds nothing to warn about.
func TestDoctorWithTheNodesSettingsFindsThemEqual(t *testing.T) {
	n := runNode(t, "")
	env := map[string]string{"USIPIPO_DATA": n.data, "USIPIPO_HTTP": "127.0.0.1:0", "USIPIPO_WG_LISTEN": "127.0.0.1:0",
		"USIPIPO_WG_MODE": "netstack", "USIPIPO_SS_LISTEN": "127.0.0.1:0", "USIPIPO_MTPROTO_LISTEN": "127.0.0.1:0",
		"USIPIPO_PUBLIC_HOST": "vpn.test"}
	by := doctorFindings(t, env)
	if f := by["settings"]; len(f) != 1 || f[0].Level != "ok" {
		t.Fatalf("settings: %+v, want them equal", f)
	}
	if f := by["database"]; len(f) != 1 || f[0].Level != "ok" || !strings.Contains(f[0].Detail, "running node") {
		t.Errorf("database: %+v", f)
	}
}

// `usipipo status --json` says which sockets the node bound and what its
// links point at, besides what it said before.
func TestStatusJSONListsBoundSockets(t *testing.T) {
	n := runNode(t, "")
	code, out, errs := runCLI(t, map[string]string{"USIPIPO_DATA": n.data}, "status", "--json")
	if code != 0 {
		t.Fatalf("status: %d %q", code, errs)
	}
	var st node.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if st.HTTP != n.HTTPAddr.String() || st.PublicHost != "vpn.test" || st.Settings == nil || st.Settings.WGMode != "netstack" ||
		st.MTProto == nil || st.MTProto.Secrets != "ee" || st.MTProto.Domain != "vpn.test" {
		t.Fatalf("status: %s", out)
	}
	var got []string
	for _, l := range st.Listeners {
		if l.Setting != "127.0.0.1:0" || !strings.HasPrefix(l.Bound, "127.0.0.1:") || strings.HasSuffix(l.Bound, ":0") {
			t.Errorf("listener %+v", l)
		}
		got = append(got, l.Name+"/"+l.Network+"/"+l.Flag)
	}
	want := "http/tcp/--http wireguard/udp/--wg-listen outline/tcp/--ss-listen outline/udp/--ss-listen mtproto/tcp/--mtproto-listen"
	if strings.Join(got, " ") != want {
		t.Errorf("listeners %v, want %s", got, want)
	}
}
