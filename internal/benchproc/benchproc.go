// Package benchproc runs a benchmark's server in a process of its own (the
// test binary again, one test selected), so that the server's CPU time is
// read from the kernel apart from the load generator's.
package benchproc

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
	"time"
)

// Proc is a started server process: its pid, and its standard output,
// whose first lines the server uses to say where it listens.
type Proc struct {
	PID int
	Out *bufio.Reader
}

// Start runs bin with args and env added to this process's environment
// until the benchmark ends: the child serves until its standard input
// closes, which the benchmark's cleanup does before waiting for it.
func Start(tb testing.TB, bin string, args []string, env ...string) Proc {
	tb.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { in.Close(); cmd.Wait() })
	return Proc{PID: cmd.Process.Pid, Out: bufio.NewReader(out)}
}

// Addr reads the "addr HOST:PORT" line a server prints first, then
// discards the rest of its output.
func (p Proc) Addr(tb testing.TB) string {
	tb.Helper()
	line, err := p.Out.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "addr ") {
		tb.Fatalf("server process %d: %q %v", p.PID, line, err)
	}
	go io.Copy(io.Discard, p.Out)
	return strings.TrimSpace(strings.TrimPrefix(line, "addr "))
}

// CPU is the CPU time (user and system, every thread) pid has used, from
// /proc/PID/task/*/schedstat (nanoseconds, unlike stat's ticks).
func CPU(pid int) (time.Duration, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("no schedstat for pid %d: %v", pid, err)
	}
	var total time.Duration
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // a thread that just ended
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("schedstat %s: %w", p, err)
		}
		total += time.Duration(ns)
	}
	return total, nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// SysCPU is the CPU time pid has spent in the kernel, from /proc/PID/stat
// (whole process, 10 ms ticks: read it over long runs). Beside CPU it shows
// how much of a server's cost is the kernel's, which no user-space change
// can win back.
func SysCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("stat of pid %d: %w", pid, err)
	}
	// The command name, field 2, may hold spaces; fields after its ")"
	// start at field 3, so stime (field 15) is the 13th.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("stat of pid %d: %d fields", pid, len(f))
	}
	ticks, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat of pid %d: stime: %w", pid, err)
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}
