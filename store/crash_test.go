package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/usipipo/usipipo/store/model"
)

// The crash and power-fail tests re-execute this test binary as a child
// that writes through Store.Do and prints one line per acknowledged command.
const (
	envChildDB    = "USIPIPO_STORE_CHILD_DB"    // the database; unset: not a child
	envChildTag   = "USIPIPO_STORE_CHILD_TAG"   // a number that keeps Telegram ids and nodes distinct across runs
	envChildN     = "USIPIPO_STORE_CHILD_N"     // commands per worker; 0: until killed
	envChildUsage = "USIPIPO_STORE_CHILD_USAGE" // "1": mix usage batches in

	childWorkers = 16
	ackMarker    = "ACK "
)

// TestStoreChild is not a test: it is the child process of the crash and
// power-fail tests. Acknowledgements go to stdout, one write(2) each, after
// Do returned nil:
//
//	ACK user <user id>
//	ACK key <key id>
//	ACK usage <key id> <node> <batches of that node acknowledged for that key>
func TestStoreChild(t *testing.T) {
	path := os.Getenv(envChildDB)
	if path == "" {
		t.Skip("helper process of the crash and power-fail tests")
	}
	tag, _ := strconv.ParseInt(os.Getenv(envChildTag), 10, 64)
	n, _ := strconv.Atoi(os.Getenv(envChildN))
	if err := runChild(path, tag, n, os.Getenv(envChildUsage) == "1"); err != nil {
		fmt.Fprintf(os.Stdout, "ERR %v\n", err)
		os.Exit(3)
	}
}

func runChild(path string, tag int64, n int, usage bool) error {
	s, err := Open(Options{Path: path})
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stdout, "READY")
	if n == 0 { // to be killed; never outlive a lost parent for long
		time.AfterFunc(30*time.Second, func() {
			fmt.Fprintln(os.Stdout, "ERR not killed within 30s")
			os.Exit(4)
		})
	}
	errs := make(chan error, childWorkers)
	var wg sync.WaitGroup
	for w := range childWorkers {
		wg.Go(func() { errs <- childWorker(s, tag, w, n, usage) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			s.Close()
			return err
		}
	}
	if err := s.Close(); err != nil {
		return err
	}
	fmt.Fprintln(os.Stdout, "DONE")
	return nil
}

// childWorker creates users, a key for the last user, and usage batches for
// the last key, in turn. Every command must be accepted.
func childWorker(s *Store, tag int64, w, n int, usage bool) error {
	ctx := context.Background()
	node := fmt.Sprintf("crash-%d-%d", tag, w)
	base := time.Unix(1_800_000_000, 0)
	var user, key string
	var intervals, onKey int
	for i := 0; n == 0 || i < n; i++ {
		at := time.Now()
		id, err := model.NewID(at, nil)
		if err != nil {
			return err
		}
		var cmd Command
		var ack string
		switch {
		case i%3 == 1 && user != "":
			cmd = CreateKey{ID: id, UserID: user, Type: model.WireGuard, Name: "crash", Node: node, Grant: ByAdmin,
				Secret: model.Sealed("sealed")}
			ack = "key " + id
		case i%3 == 2 && key != "" && usage:
			start := base.Add(time.Duration(intervals) * time.Second)
			cmd = UsageBatch{Node: node, Start: start, End: start.Add(time.Second), Deltas: []UsageDelta{{ID: key, Rx: 1}}}
			ack = fmt.Sprintf("usage %s %s %d", key, node, onKey+1)
		default:
			tg := tag<<32 | int64(w)<<24 | int64(i+1)
			cmd = CreateUser{ID: id, TelegramID: tg, UserKey: model.Sealed("sealed-user-key"), Language: "es", ReferralCode: "r" + id}
			ack = "user " + id
		}
		if err := s.Do(ctx, Meta{At: at, Actor: "test"}, cmd); err != nil {
			return fmt.Errorf("%s: %w", cmd.Kind(), err)
		}
		// One write(2) per line, after Do: what the parent sees was acknowledged.
		fmt.Fprintf(os.Stdout, "%s%s\n", ackMarker, ack)
		switch c := cmd.(type) {
		case CreateUser:
			user = c.ID
		case CreateKey:
			key, onKey = c.ID, 0
		case UsageBatch:
			intervals++
			onKey++
		}
	}
	return nil
}

// childCmd returns the command that runs TestStoreChild on path, under
// wrap (e.g. strace and its flags) when wrap is not empty.
func childCmd(wrap []string, path string, tag int64, n int, usage bool) *exec.Cmd {
	args := append(append([]string(nil), wrap...), os.Args[0], "-test.run=^TestStoreChild$", "-test.count=1")
	cmd := exec.Command(args[0], args[1:]...)
	u := "0"
	if usage {
		u = "1"
	}
	cmd.Env = append(os.Environ(), envChildDB+"="+path, envChildTag+"="+strconv.FormatInt(tag, 10),
		envChildN+"="+strconv.Itoa(n), envChildUsage+"="+u)
	return cmd
}

// acks is what a child acknowledged.
type acks struct {
	users, keys []string
	usage       map[[2]string]int // (key, node) -> batches acknowledged
}

func (a *acks) total() int {
	n := len(a.users) + len(a.keys)
	for _, c := range a.usage {
		n += c
	}
	return n
}

func (a *acks) add(line string) error {
	f := strings.Fields(strings.TrimPrefix(line, ackMarker))
	switch {
	case len(f) == 2 && f[0] == "user":
		a.users = append(a.users, f[1])
	case len(f) == 2 && f[0] == "key":
		a.keys = append(a.keys, f[1])
	case len(f) == 4 && f[0] == "usage":
		n, err := strconv.Atoi(f[3])
		if err != nil {
			return fmt.Errorf("ack line %q: %w", line, err)
		}
		a.usage[[2]string{f[1], f[2]}] = max(a.usage[[2]string{f[1], f[2]}], n)
	default:
		return fmt.Errorf("unexpected ack line %q", line)
	}
	return nil
}

// killRound starts a child on path, SIGKILLs it delay after it has opened
// the store, and returns what it acknowledged before dying.
func killRound(t *testing.T, path string, tag int64, delay time.Duration) *acks {
	t.Helper()
	cmd := childCmd(nil, path, tag, 0, true)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	got := &acks{usage: map[[2]string]int{}}
	var bad []string
	readErr := make(chan error, 1)
	go func() { readErr <- readAcks(out, ready, got, &bad) }()
	var rerr error
	select {
	case <-ready:
		time.Sleep(delay)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("killing the child: %v", err)
		}
		rerr = <-readErr // EOF: the child is gone, everything it wrote is read
	case rerr = <-readErr:
		bad = append(bad, "child closed its output before opening the store")
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		rerr = <-readErr
		bad = append(bad, "child not ready after 20s")
	}
	werr := cmd.Wait()
	if rerr != nil || len(bad) > 0 {
		t.Fatalf("child: %v %q; stderr: %s", rerr, bad, stderr.String())
	}
	var ee *exec.ExitError
	if !errors.As(werr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v before it was killed; stderr: %s", werr, stderr.String())
	}
	return got
}

func readAcks(r io.Reader, ready chan<- struct{}, got *acks, bad *[]string) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "READY":
			close(ready)
		case strings.HasPrefix(line, ackMarker):
			if err := got.add(line); err != nil {
				*bad = append(*bad, err.Error())
			}
		case strings.HasPrefix(line, "ERR"):
			*bad = append(*bad, line)
		}
	}
	return sc.Err()
}

// TestCrashKeepsAcknowledgedCommands kills a writing child at random moments
// and checks, on the same file round after round, that every acknowledged
// command survived, that at most one unacknowledged command per worker did,
// and that the file and its indexes are consistent.
func TestCrashKeepsAcknowledgedCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: re-executes the test binary 20 times")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>32))
	path := filepath.Join(t.TempDir(), "usipipo.db")
	prevUsers, acked := 0, 0
	const rounds = 20
	for round := range rounds {
		delay := time.Duration(20+rng.IntN(281)) * time.Millisecond
		got := killRound(t, path, int64(round+1), delay)
		acked += got.total()
		s, err := Open(Options{Path: path})
		if err != nil {
			t.Fatalf("round %d: reopening after SIGKILL: %v", round, err)
		}
		err = verifyRound(s, got, prevUsers)
		if err == nil {
			err = s.Check()
		}
		if err == nil {
			prevUsers, err = countUsers(s)
		}
		if cerr := s.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatalf("round %d (killed %v after open, %d acks): %v", round, delay, got.total(), err)
		}
	}
	if acked < rounds {
		t.Fatalf("only %d commands acknowledged in %d rounds: the test did not exercise the store", acked, rounds)
	}
	t.Logf("%d rounds, %d acknowledged commands, all present; %d users in the file", rounds, acked, prevUsers)
}

func verifyRound(s *Store, got *acks, prevUsers int) error {
	for _, id := range got.users {
		if _, err := s.User(id); err != nil {
			return fmt.Errorf("acknowledged user lost: %w", err)
		}
	}
	for _, id := range got.keys {
		if _, err := s.Key(id); err != nil {
			return fmt.Errorf("acknowledged key lost: %w", err)
		}
	}
	for kn, n := range got.usage {
		k, err := s.Key(kn[0])
		if err != nil {
			return fmt.Errorf("key of acknowledged usage: %w", err)
		}
		// Each worker has at most one command in flight when killed.
		if rx := k.Usage[kn[1]].Rx; rx < uint64(n) || rx > uint64(n)+1 {
			return fmt.Errorf("key %s node %s: rx %d after %d acknowledged batches of 1 byte", kn[0], kn[1], rx, n)
		}
	}
	users, err := countUsers(s)
	if err != nil {
		return err
	}
	if d := users - prevUsers; d < len(got.users) || d > len(got.users)+childWorkers {
		return fmt.Errorf("%d new users for %d acknowledged and %d workers", d, len(got.users), childWorkers)
	}
	return nil
}

func countUsers(s *Store) (int, error) {
	n := 0
	err := s.read(func(v *view) error {
		n = v.bucket(bUsers).Stats().KeyN
		return nil
	})
	return n, err
}
