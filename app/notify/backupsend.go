package notify

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/usipipo/usipipo/store"
)

// Off-box backups: the newest scheduled backup (already encrypted to the
// operator's passphrase by app/backup) goes to the admins' chats as a
// document, at most once per BackupEvery. The checkpoint names the file
// last sent and when.
const ckBackupSent = "notify/backup_sent"

func (n *Notifier) sendBackup(ctx context.Context, now time.Time) error {
	if n.o.BackupDir == "" || n.tg == nil || len(n.o.AdminChats) == 0 {
		return nil
	}
	name, err := newestBackup(n.o.BackupDir)
	if err != nil || name == "" {
		return err
	}
	raw, err := n.st.GetTelemetry(store.Checkpoints, ckBackupSent)
	if err != nil {
		return err
	}
	if last, at, ok := strings.Cut(string(raw), "|"); ok {
		sec, _ := strconv.ParseInt(at, 10, 64)
		if last == name || now.Before(time.Unix(sec, 0).Add(n.o.BackupEvery)) {
			return nil
		}
	}
	path := filepath.Join(n.o.BackupDir, name)
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("backup to send: %w", err)
	}
	size := humanBytes(uint64(fi.Size()))
	if fi.Size() > maxDocument {
		err = n.notifyAdmins(ctx, adminNote{kind: "backup", subject: name, telegram: true, textID: "admin_backup_too_big",
			args: []string{"name", name, "size", size}}, nil)
	} else {
		err = n.notifyAdmins(ctx, adminNote{kind: "backup", subject: name, telegram: true, textID: "admin_backup",
			args: []string{"name", name, "size", size}},
			func(rctx context.Context, chat int64, caption string) error {
				f, err := os.Open(path)
				if err != nil {
					return fmt.Errorf("opening backup: %w", err)
				}
				defer f.Close()
				return n.tg.sendDocument(rctx, chat, name, f, caption)
			})
	}
	if err != nil {
		return ignoreNotSent(err)
	}
	return n.st.PutTelemetry(store.Checkpoints, map[string][]byte{ckBackupSent: []byte(name + "|" + strconv.FormatInt(now.Unix(), 10))})
}

// newestBackup names the newest usipipo-<UTC time>[-n].bak in dir ("" when
// there is none). Names sort by time; a same-second sequence by its number.
func newestBackup(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("listing backups: %w", err)
	}
	best, bestKey := "", ""
	for _, e := range entries {
		s, ok := strings.CutPrefix(e.Name(), "usipipo-")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		if s, ok = strings.CutSuffix(s, ".bak"); !ok {
			continue
		}
		ts, seq, _ := strings.Cut(s, "-")
		if len(ts) != len("20060102T150405Z") {
			continue
		}
		if _, err := time.Parse("20060102T150405Z", ts); err != nil {
			continue
		}
		n, _ := strconv.Atoi(seq)
		if key := fmt.Sprintf("%s%06d", ts, n); key > bestKey {
			best, bestKey = e.Name(), key
		}
	}
	return best, nil
}
