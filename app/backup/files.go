package backup

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Scheduled backup files are usipipo-<UTC time>.bak, or
// usipipo-<UTC time>-<n>.bak (n ≥ 2) for a second backup in the same second.
const (
	timeLayout = "20060102T150405Z"
	filePrefix = "usipipo-"
	fileExt    = ".bak"
	tmpExt     = ".tmp"
	verifyGlob = ".verify-*"
)

type backupFile struct {
	name string
	at   time.Time
	seq  int
}

func fileName(at time.Time, seq int) string {
	s := filePrefix + at.UTC().Format(timeLayout)
	if seq > 1 {
		s += "-" + strconv.Itoa(seq)
	}
	return s + fileExt
}

func parseFileName(name string) (backupFile, bool) {
	s, ok := strings.CutPrefix(name, filePrefix)
	if !ok {
		return backupFile{}, false
	}
	if s, ok = strings.CutSuffix(s, fileExt); !ok {
		return backupFile{}, false
	}
	seq := 1
	if ts, n, found := strings.Cut(s, "-"); found {
		v, err := strconv.Atoi(n)
		if err != nil || v < 2 || strconv.Itoa(v) != n {
			return backupFile{}, false
		}
		s, seq = ts, v
	}
	at, err := time.Parse(timeLayout, s)
	if err != nil || fileName(at, seq) != name {
		return backupFile{}, false
	}
	return backupFile{name: name, at: at, seq: seq}, true
}

// listBackups returns dir's backup files, newest first.
func listBackups(dir string) ([]backupFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing backups: %w", err)
	}
	var out []backupFile
	for _, e := range entries {
		if b, ok := parseFileName(e.Name()); ok && e.Type().IsRegular() {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b backupFile) int {
		if c := b.at.Compare(a.at); c != 0 {
			return c
		}
		return cmp.Compare(b.seq, a.seq)
	})
	return out, nil
}

// freeName returns the first unused backup name for at.
func freeName(dir string, at time.Time) (string, error) {
	for seq := 1; seq < 1000; seq++ {
		name := fileName(at, seq)
		_, err1 := os.Lstat(filepath.Join(dir, name))
		_, err2 := os.Lstat(filepath.Join(dir, name+tmpExt))
		if errors.Is(err1, fs.ErrNotExist) && errors.Is(err2, fs.ErrNotExist) {
			return name, nil
		}
	}
	return "", fmt.Errorf("no free backup name for %s in %s", at.Format(timeLayout), dir)
}

// removeLeftovers deletes what a crash in the middle of a backup leaves: a
// .tmp file and a verification directory.
func removeLeftovers(dir string) error {
	var errs []error
	for _, pattern := range []string{filePrefix + "*" + fileExt + tmpExt, verifyGlob} {
		matches, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return err
		}
		for _, m := range matches {
			errs = append(errs, os.RemoveAll(m))
		}
	}
	return errors.Join(errs...)
}
