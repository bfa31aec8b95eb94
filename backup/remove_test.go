package backup_test

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mbaudit/mbaudit/backup"
	"github.com/mbaudit/mbaudit/backup/backuptest"
)

func TestLockRoot(t *testing.T) {
	root := t.TempDir()
	l, err := backup.LockRoot(root, pruneNow)
	if err != nil {
		t.Fatal(err)
	}
	if l.Stale != nil {
		t.Errorf("fresh lock reported stale: %v", l.Stale)
	}
	// A second taker (another open file, as another process would be) is
	// refused and told who holds it.
	_, err = backup.LockRoot(root, pruneNow)
	var le *backup.LockedError
	if !errors.As(err, &le) {
		t.Fatalf("second lock: %v, want a LockedError", err)
	}
	if le.Holder.PID != os.Getpid() || !strings.Contains(err.Error(), "pid ") {
		t.Errorf("holder %+v, message %q", le.Holder, err)
	}
	l.Release()
	if _, err := os.Stat(filepath.Join(root, backup.LockName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file left after release: %v", err)
	}
	l2, err := backup.LockRoot(root, pruneNow)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	l2.Release()
}

// A lock file left by a process that died (no kernel lock on it) is taken
// over, and the caller is told whose it was.
func TestLockRootStale(t *testing.T) {
	root := t.TempDir()
	data, _ := json.Marshal(backup.LockInfo{PID: 999999, Host: "gone", Started: pruneNow})
	if err := os.WriteFile(filepath.Join(root, backup.LockName), data, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := backup.LockRoot(root, pruneNow)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if l.Stale == nil || l.Stale.PID != 999999 {
		t.Errorf("stale = %v, want pid 999999", l.Stale)
	}
}

func TestFinishTrash(t *testing.T) {
	root := t.TempDir()
	b := backuptest.MustWrite(t, root, backuptest.Seed(1), backuptest.Files(5))
	trash := filepath.Join(root, backup.TrashName)
	os.Mkdir(trash, 0o700)
	if err := os.Rename(b.Path, filepath.Join(trash, filepath.Base(b.Path))); err != nil {
		t.Fatal(err)
	}
	done, err := backup.FinishTrash(context.Background(), root)
	if err != nil || len(done) != 1 {
		t.Fatalf("done %v, err %v", done, err)
	}
	if _, err := os.Stat(trash); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("trash left: %v", err)
	}
	if done, err := backup.FinishTrash(context.Background(), root); err != nil || len(done) != 0 {
		t.Errorf("second run: %v %v", done, err)
	}
}

func plannedRemoval(t *testing.T, root string) (*backup.Plan, []*backup.Backup) {
	t.Helper()
	d := backup.Discover([]string{root}, "linux")
	bs, err := backup.List(context.Background(), d.Candidates, backup.Options{Now: pruneNow, BusyWindow: backup.DefaultBusyWindow}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return backup.MakePlan(bs, backup.Rules{Incomplete: true}, pruneNow), bs
}

func TestApplyRemoves(t *testing.T) {
	root := t.TempDir()
	keep := backuptest.MustWrite(t, root, backuptest.Seed(1), backuptest.Files(5))
	gone := backuptest.MustWrite(t, root, backuptest.Seed(2), backuptest.Files(5), backuptest.UDID(filepath.Base(keep.Path)),
		backuptest.DatedCopy(pruneNow.AddDate(-1, 0, 0)), backuptest.Missing(backuptest.StatusPlist))
	p, _ := plannedRemoval(t, root)
	if n := len(p.Acting()); n != 1 {
		t.Fatalf("%d to remove, want 1: %v", n, p.Rows)
	}
	var log []string
	recheck := func(ctx context.Context, b *backup.Backup) (*backup.Backup, error) {
		bs, err := backup.List(ctx, []backup.Candidate{{Path: b.Path}}, backup.Options{Now: pruneNow, BusyWindow: backup.DefaultBusyWindow}, nil)
		if err != nil {
			return nil, err
		}
		return bs[0], nil
	}
	var files int64
	filepath.WalkDir(gone.Path, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files++
		}
		return nil
	})
	var told []string
	var removed int64
	progress := func(b *backup.Backup) func(int64) {
		told = append(told, b.ID)
		return func(n int64) {
			if n != removed+1 {
				t.Errorf("progress %d after %d", n, removed)
			}
			removed = n
		}
	}
	err := backup.Apply(context.Background(), p, backup.ApplyOptions{Recheck: recheck, Log: func(s string) { log = append(log, s) }, RemoveProgress: progress})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Acting()[0].Done {
		t.Fatalf("not done: %v", p.Acting()[0].Err)
	}
	if len(told) != 1 || told[0] != filepath.Base(gone.Path) || removed != files || files == 0 {
		t.Errorf("progress told of %q, %d files removed of %d", told, removed, files)
	}
	if _, err := os.Stat(gone.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still there", gone.Path)
	}
	if _, err := os.Stat(keep.Path); err != nil {
		t.Errorf("kept backup gone: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, backup.TrashName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("trash left behind")
	}
	if len(log) != 2 {
		t.Errorf("log %q", log)
	}
}

// A backup that changed between the plan and the removal is left alone.
func TestApplyRechecks(t *testing.T) {
	root := t.TempDir()
	keep := backuptest.MustWrite(t, root, backuptest.Seed(1), backuptest.Files(5))
	gone := backuptest.MustWrite(t, root, backuptest.Seed(2), backuptest.Files(5), backuptest.UDID(filepath.Base(keep.Path)),
		backuptest.DatedCopy(pruneNow.AddDate(-1, 0, 0)), backuptest.Missing(backuptest.StatusPlist))
	tests := map[string]func(b *backup.Backup){
		"grew":          func(b *backup.Backup) { b.Usage.DiskBytes += 4096 },
		"state changed": func(b *backup.Backup) { b.State = backup.StateBusy },
		"written":       func(b *backup.Backup) { b.NewestChange = b.NewestChange.Add(1) },
	}
	for name, change := range tests {
		t.Run(name, func(t *testing.T) {
			p, _ := plannedRemoval(t, root)
			recheck := func(ctx context.Context, b *backup.Backup) (*backup.Backup, error) {
				c := *b
				change(&c)
				return &c, nil
			}
			if err := backup.Apply(context.Background(), p, backup.ApplyOptions{Recheck: recheck}); err != nil {
				t.Fatal(err)
			}
			r := p.Acting()[0]
			if r.Done || r.Err == nil || !strings.Contains(r.Err.Error(), "changed since the plan") {
				t.Errorf("done %v, err %v", r.Done, r.Err)
			}
			if _, err := os.Stat(gone.Path); err != nil {
				t.Errorf("changed backup touched: %v", err)
			}
		})
	}
	t.Run("backup program", func(t *testing.T) {
		p, _ := plannedRemoval(t, root)
		err := backup.Apply(context.Background(), p, backup.ApplyOptions{BackupProgram: func() string { return "idevicebackup2" }})
		if err != nil || p.Acting()[0].Done {
			t.Errorf("err %v, done %v", err, p.Acting()[0].Done)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		p, _ := plannedRemoval(t, root)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := backup.Apply(ctx, p, backup.ApplyOptions{}); !errors.Is(err, context.Canceled) {
			t.Errorf("err %v", err)
		}
		if _, err := os.Stat(gone.Path); err != nil {
			t.Errorf("touched after cancel: %v", err)
		}
	})
}

func TestRunningBackupProgram(t *testing.T) {
	tests := map[string]struct {
		names []string
		want  string
	}{
		"none":                       {[]string{"bash", "python3", "/usr/bin/ls"}, ""},
		"path":                       {[]string{"/usr/local/bin/idevicebackup2"}, "idevicebackup2"},
		"cut short by /proc":         {[]string{"AppleMobileDevi"}, "AppleMobileDeviceHelper"},
		"python module":              {[]string{"python3", "pymobiledevice3"}, "pymobiledevice3"},
		"short prefix is not enough": {[]string{"idevice"}, ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := backup.RunningBackupProgram(tt.names); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
