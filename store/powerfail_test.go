package store

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/usipipo/usipipo/store/model"
)

// A SIGKILL keeps the page cache, so the crash test cannot see a missing
// fsync. This test runs the child under strace and checks, syscall by
// syscall, that every acknowledgement follows the durable commit of its own
// command: bbolt's commit is data pwrite64s, fdatasync, the meta page's
// pwrite64, fdatasync.
func TestAcksFollowFsyncOfTheirCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("power-fail test: runs the test binary under strace")
	}
	bin, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("strace not found (Debian package strace): cannot check that acknowledgements follow fdatasync")
	}
	if out, err := exec.Command(bin, "-f", "-o", os.DevNull, "true").CombinedOutput(); err != nil {
		t.Skipf("strace cannot trace here (is ptrace allowed?): %v: %s", err, out)
	}
	dir := t.TempDir()
	path, trace := filepath.Join(dir, "usipipo.db"), filepath.Join(dir, "strace.log")
	const perWorker = 30
	cmd := childCmd([]string{bin, "-f", "-qq", "-e", "signal=none", "-s", "65536",
		"-e", "trace=openat,close,pwrite64,write,fdatasync,fsync", "-o", trace}, path, 1, perWorker, false)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child under strace: %v\nstdout: %s\nstderr: %s", err, out, stderr.String())
	}
	printed := strings.Count(string(out), "\n"+ackMarker)
	if want := childWorkers * perWorker; printed != want || !strings.Contains(string(out), "\nDONE\n") {
		t.Fatalf("child printed %d acknowledgements, want %d and DONE:\n%s", printed, want, out)
	}
	f, err := os.Open(trace)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := checkAckOrder(f, path, os.Getpagesize())
	if err != nil {
		t.Fatal(err)
	}
	if res.acks != printed {
		t.Fatalf("the trace holds %d acknowledgements, the child printed %d", res.acks, printed)
	}
	t.Logf("%d acknowledgements, each after the fdatasync of its own commit (%d commits)", res.acks, res.commits)
}

// traceEvent is one completed syscall of interest, in trace order.
type traceEvent struct {
	kind byte   // 'w' data pwrite64 to the db, 'm' meta page pwrite64 to the db, 's' db sync, 'a' ack
	text string // pwrite64's buffer as strace printed it; the ack's id
	line int
}

type ackOrder struct{ acks, commits int }

// checkAckOrder reads `strace -f -s BIG -e trace=openat,close,pwrite64,write,
// fdatasync,fsync` output of a process writing the bbolt file dbPath and
// printing "ACK <kind> <id>" lines on fd 1. For every acknowledgement it finds
// the first pwrite64 to the db fd whose buffer holds the acknowledged id —
// a page of the commit that applied it — and requires, before the ack's
// write(2) starts: a successful sync of the db fd after that pwrite64 (the
// data sync), then a meta-page pwrite64, then a successful sync that has
// returned. Later pwrite64s are allowed: the committer starts the next
// group's transaction as soon as the previous one is synced.
func checkAckOrder(r io.Reader, dbPath string, pageSize int) (ackOrder, error) {
	events, err := parseTrace(r, dbPath, pageSize)
	if err != nil {
		return ackOrder{}, err
	}
	var res ackOrder
	ids := map[string]int{} // acknowledged id -> index of its first db pwrite64, -1 when none yet
	for _, e := range events {
		switch e.kind {
		case 'a':
			if len(e.text) != model.IDLen {
				return res, fmt.Errorf("trace line %d: acknowledgement of %q, not an id", e.line, e.text)
			}
			ids[e.text] = -1
		case 'm':
			res.commits++
		}
	}
	for i, e := range events {
		if e.kind == 'w' {
			eachIDWindow(e.text, func(w string) {
				if p, ok := ids[w]; ok && p < 0 {
					ids[w] = i
				}
			})
		}
	}
	// next[k][i]: the first event of kind k at or after i.
	nextMeta, nextSync := make([]int, len(events)+1), make([]int, len(events)+1)
	nextMeta[len(events)], nextSync[len(events)] = len(events), len(events)
	for i := len(events) - 1; i >= 0; i-- {
		nextMeta[i], nextSync[i] = nextMeta[i+1], nextSync[i+1]
		switch events[i].kind {
		case 'm':
			nextMeta[i] = i
		case 's':
			nextSync[i] = i
		}
	}
	for a, e := range events {
		if e.kind != 'a' {
			continue
		}
		res.acks++
		p := ids[e.text]
		if p < 0 || p > a {
			return res, fmt.Errorf("trace line %d: %s acknowledged before any pwrite64 of it to the db", e.line, e.text)
		}
		dataSync, meta := nextSync[p], nextMeta[p]
		if dataSync > meta || meta > a {
			return res, fmt.Errorf("trace line %d: %s acknowledged, its pages (line %d) not synced before a meta page was written before the ack", e.line, e.text, events[p].line)
		}
		if nextSync[meta] > a {
			return res, fmt.Errorf("trace line %d: %s acknowledged before the sync of its commit's meta page (line %d)", e.line, e.text, events[meta].line)
		}
	}
	return res, nil
}

// eachIDWindow calls fn with every model.IDLen-long window of every run of
// id characters in s. Ids are printable, so strace shows them as they are.
func eachIDWindow(s string, fn func(string)) {
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && isIDChar(s[i]) {
			continue
		}
		for j := start; j+model.IDLen <= i; j++ {
			fn(s[j : j+model.IDLen])
		}
		start = i + 1
	}
}

func isIDChar(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' }

// parseTrace turns strace lines into events. A syscall split by another
// thread's ("<unfinished ...>" then "<... resumed>") counts at its return,
// except the ack's write, which counts at its start.
func parseTrace(r io.Reader, dbPath string, pageSize int) ([]traceEvent, error) {
	var events []traceEvent
	pending := map[string]string{} // pid -> call text of an unfinished syscall
	dbFD := int64(-1)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for n := 1; sc.Scan(); n++ {
		pid, line := splitPID(sc.Text())
		var call, ret string
		switch {
		case strings.HasPrefix(line, "+++") || strings.HasPrefix(line, "---") || line == "":
			continue
		case strings.HasPrefix(line, "<... ") && strings.HasSuffix(line, " <unfinished ...>"):
			continue // interrupted again, e.g. by the thread's exit: still not complete
		case strings.HasSuffix(line, " <unfinished ...>"):
			call = strings.TrimSuffix(line, " <unfinished ...>")
			pending[pid] = call
			if e, ok := ackEvent(call, n); ok {
				events = append(events, e)
			}
			continue
		case strings.HasPrefix(line, "<... "):
			call = pending[pid]
			delete(pending, pid)
			if call == "" {
				return nil, fmt.Errorf("trace line %d: resumed syscall never started: %q", n, line)
			}
			_, ret = splitRet(line)
		default:
			call, ret = splitRet(line)
			call = strings.TrimSuffix(strings.TrimRight(call, " "), ")")
			if e, ok := ackEvent(call, n); ok {
				events = append(events, e)
			}
		}
		name, args, ok := strings.Cut(call, "(")
		if !ok {
			return nil, fmt.Errorf("trace line %d: not a syscall: %q", n, line)
		}
		rv, err := strconv.ParseInt(ret, 10, 64)
		if err != nil {
			continue // "?" or unparsable: the call did not complete
		}
		switch name {
		case "openat":
			if p, _, ok := quoted(args); ok && p == dbPath && rv >= 0 {
				dbFD = rv
			}
		case "close":
			if fd, _ := strconv.ParseInt(args, 10, 64); fd == dbFD {
				dbFD = -1
			}
		case "fdatasync", "fsync":
			if fd, _ := strconv.ParseInt(args, 10, 64); fd == dbFD && dbFD >= 0 && rv == 0 {
				events = append(events, traceEvent{kind: 's', line: n})
			}
		case "pwrite64":
			fdText, rest, _ := strings.Cut(args, ", ")
			fd, _ := strconv.ParseInt(fdText, 10, 64)
			buf, tail, ok := quoted(rest)
			if !ok || fd != dbFD || dbFD < 0 {
				continue
			}
			var size, off int64
			if _, err := fmt.Sscanf(strings.TrimPrefix(tail, "..."), ", %d, %d", &size, &off); err != nil {
				return nil, fmt.Errorf("trace line %d: pwrite64 arguments %q: %v", n, tail, err)
			}
			if rv != size {
				continue // a short or failed write is not a write of the page
			}
			kind := byte('w')
			if size == int64(pageSize) && (off == 0 || off == int64(pageSize)) {
				kind = 'm'
			}
			events = append(events, traceEvent{kind: kind, text: buf, line: n})
		}
	}
	return events, sc.Err()
}

// ackEvent recognises the start of write(1, "ACK <kind> <id>\n", n).
func ackEvent(call string, n int) (traceEvent, bool) {
	args, ok := strings.CutPrefix(call, "write(1, ")
	if !ok {
		return traceEvent{}, false
	}
	s, _, ok := quoted(args)
	if !ok || !strings.HasPrefix(s, ackMarker) {
		return traceEvent{}, false
	}
	f := strings.Fields(strings.TrimSuffix(s, `\n`))
	return traceEvent{kind: 'a', text: f[len(f)-1], line: n}, true
}

// splitPID removes strace -f's "PID " prefix.
func splitPID(line string) (pid, rest string) {
	i := 0
	for i < len(line) && line[i] >= '0' && line[i] <= '9' {
		i++
	}
	if i > 0 && i < len(line) && line[i] == ' ' {
		return line[:i], strings.TrimLeft(line[i:], " ")
	}
	return "", line
}

// splitRet splits "call(args) = ret [ERRNO (text)]" at its last " = ".
func splitRet(line string) (call, ret string) {
	i := strings.LastIndex(line, " = ")
	if i < 0 {
		return line, ""
	}
	ret, _, _ = strings.Cut(line[i+3:], " ")
	return line[:i], ret
}

// quoted returns the first double-quoted string of s, still escaped as
// strace printed it, and what follows its closing quote.
func quoted(s string) (str, rest string, ok bool) {
	i := strings.IndexByte(s, '"')
	if i < 0 {
		return "", "", false
	}
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return s[i+1 : j], s[j+1:], true
		}
	}
	return "", "", false
}

// goodTrace is a commit of user A as bbolt makes it, with the next group's
// first page written (by the pipelined committer) before A's ack, and
// another thread's syscalls interleaved. Lines are tagged for the mutations.
const goodTrace = `100 openat(AT_FDCWD, "/d/usipipo.db", O_RDWR|O_CREAT|O_CLOEXEC, 0600) = 3
100 pwrite64(3, "\2\0\0\0\0\0\0\0\1\0\0\0\1\0\0\0\0\0\20\00001jz000000000000000000000a{\"id\":\"01jz000000000000000000000a\"}", 4096, 16384) = 4096 #data
100 fdatasync(3)                      = 0 #datasync
100 pwrite64(3, "\0\0\0\0\0\0\0\0\4\0\0\0\355\332\f\355"..., 4096, 4096) = 4096 #meta
100 fdatasync(3 <unfinished ...> #sync
101 write(1, "READY\n", 6) = 6
100 <... fdatasync resumed>)           = 0 #syncdone
100 pwrite64(3, "\2\0\0\0\0\0\0\0\1\0\0\0\1\0\0\0\0\0\20\00001jz000000000000000000000b", 4096, 20480) = 4096
102 write(1, "ACK user 01jz000000000000000000000a\n", 38 <unfinished ...> #ack
100 fdatasync(3)                      = 0
102 <... write resumed>)              = 38
100 pwrite64(3, "\0\0\0\0\0\0\0\0\4\0\0\0\355\332\f\355"..., 4096, 0) = 4096
100 fdatasync(3)                      = 0
102 write(1, "ACK user 01jz000000000000000000000b\n", 38) = 38
100 close(3)                          = 0
100 +++ exited with 0 +++`

func TestCheckAckOrderFindsAckBeforeSync(t *testing.T) {
	edit := func(drop string, replace ...string) string {
		var out []string
		for l := range strings.SplitSeq(goodTrace, "\n") {
			if drop != "" && strings.HasSuffix(l, drop) {
				continue
			}
			out = append(out, l)
		}
		return strings.NewReplacer(replace...).Replace(strings.Join(out, "\n"))
	}
	strip := func(s string) string { // tags are not strace's
		var out []string
		for l := range strings.SplitSeq(s, "\n") {
			if i := strings.LastIndex(l, " #"); i > 0 {
				l = l[:i]
			}
			out = append(out, l)
		}
		return strings.Join(out, "\n")
	}
	res, err := checkAckOrder(strings.NewReader(strip(goodTrace)), "/d/usipipo.db", 4096)
	if err != nil || res.acks != 2 || res.commits != 2 {
		t.Fatalf("good trace: %+v %v, want 2 acks and 2 commits", res, err)
	}
	ackFirst := "0600) = 3\n102 write(1, \"ACK user 01jz000000000000000000000a\\n\", 38) = 38"
	bad := map[string]struct{ trace, want string }{
		"no final sync": {edit("#syncdone", "100 fdatasync(3 <unfinished ...> #sync", "100 pwrite64(3, \"x\", 1, 0) = 1"),
			"before the sync of its commit's meta page"},
		"no data sync":      {edit("#datasync"), "not synced before a meta page"},
		"ack while syncing": {edit("#syncdone", "102 <... write resumed>)              = 38", "100 <... fdatasync resumed>) = 0"), "before the sync"},
		"sync of other fd":  {edit("", "fdatasync(3 <unfinished", "fdatasync(4 <unfinished"), "before the sync"},
		"failed sync":       {edit("", "<... fdatasync resumed>)           = 0", "<... fdatasync resumed>) = -1 EIO (Input/output error)"), "before the sync"},
		"fd closed":         {edit("", "100 fdatasync(3)                      = 0 #datasync", "100 close(3) = 0\n100 fdatasync(3) = 0"), "not synced"},
		"ack before write":  {edit("#ack", "0600) = 3", ackFirst, "102 <... write resumed>)              = 38\n", ""), "before any pwrite64"},
		"not an id":         {edit("", "ACK user 01jz000000000000000000000b", "ACK user 01jz"), "not an id"},
	}
	for name, c := range bad {
		_, err := checkAckOrder(strings.NewReader(strip(c.trace)), "/d/usipipo.db", 4096)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error with %q; trace:\n%s", name, err, c.want, strip(c.trace))
		}
	}
}
