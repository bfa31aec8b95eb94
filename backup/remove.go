package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// LockName is the lock file prune takes in each root it changes.
const LockName = TrashPrefix + "lock"

// TrashName is the holding folder inside a root: a backup being removed is
// first renamed into it, so that nothing looking at the root's children ever
// sees a half-deleted backup.
const TrashName = TrashPrefix + "trash"

// LockInfo is what a lock file holds.
type LockInfo struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Started time.Time `json:"started"`
}

func (l LockInfo) String() string {
	return fmt.Sprintf("pid %d on %s, started %s", l.PID, l.Host, l.Started.UTC().Format(time.RFC3339))
}

// LockedError says that another mbaudit holds a root's lock.
type LockedError struct {
	Path   string
	Holder LockInfo
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("%s is locked by another mbaudit (%s); wait for it to finish", e.Path, e.Holder)
}

// Lock is a held lock on a root.
type Lock struct {
	f    *os.File
	path string
	// Stale is set when the lock file was left by a process that died
	// (its kernel lock was gone); it holds what that process had written.
	Stale *LockInfo
}

// LockRoot takes the lock of a root: <root>/.mbaudit-lock, holding the pid,
// host and start time. The kernel lock (flock) on the file is what counts:
// it goes away when its process dies, even by SIGKILL, so a lock file left
// behind by a dead process is taken over (Lock.Stale says so), while a live
// holder makes LockRoot fail with a *LockedError naming it.
func LockRoot(root string, now time.Time) (*Lock, error) {
	path := filepath.Join(root, LockName)
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("taking the lock %s: %w", path, err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			info, _ := readLock(f)
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, &LockedError{Path: root, Holder: info}
			}
			return nil, fmt.Errorf("taking the lock %s: %w", path, err)
		}
		// The holder before us may have removed the file between our open
		// and our flock: then we hold a lock on a file nobody else sees.
		var fst, pst unix.Stat_t
		if unix.Fstat(int(f.Fd()), &fst) != nil || unix.Stat(path, &pst) != nil || fst.Ino != pst.Ino || fst.Dev != pst.Dev {
			f.Close()
			continue
		}
		l := &Lock{f: f, path: path}
		if old, err := readLock(f); err == nil && old.PID != 0 {
			l.Stale = &old
		}
		host, _ := os.Hostname()
		data, _ := json.Marshal(LockInfo{PID: os.Getpid(), Host: host, Started: now.UTC()})
		err = f.Truncate(0)
		if err == nil {
			_, err = f.WriteAt(append(data, '\n'), 0)
		}
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			l.Release()
			return nil, fmt.Errorf("writing the lock %s: %w", path, err)
		}
		return l, nil
	}
}

func readLock(f *os.File) (LockInfo, error) {
	var info LockInfo
	data, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<16))
	if err != nil {
		return info, err
	}
	err = json.Unmarshal(data, &info)
	return info, err
}

// Release removes the lock file and drops the lock.
func (l *Lock) Release() {
	if l == nil || l.f == nil {
		return
	}
	os.Remove(l.path)
	l.f.Close()
	l.f = nil
}

// FinishTrash removes what an interrupted removal left in the root's
// holding folder and returns the names it removed. Call it with the root's
// lock held.
func FinishTrash(ctx context.Context, root string) ([]string, error) {
	trash := filepath.Join(root, TrashName)
	entries, err := os.ReadDir(trash)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", trash, err)
	}
	var done []string
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		if err := os.RemoveAll(filepath.Join(trash, e.Name())); err != nil {
			return done, fmt.Errorf("removing %s: %w", filepath.Join(trash, e.Name()), err)
		}
		done = append(done, e.Name())
	}
	os.Remove(trash)
	return done, nil
}

// ApplyOptions tune Apply.
type ApplyOptions struct {
	// Recheck inspects a backup again, the same way the plan's state was
	// found (quick or verified), and returns what it sees now.
	Recheck func(ctx context.Context, b *Backup) (*Backup, error)
	// BackupProgram returns the name of a backup program running now, or "".
	BackupProgram func() string
	// Log is told of each step as it happens.
	Log func(msg string)
	// Archive archives a backup (rows with ActionArchive) and returns where
	// the archive is; the backup is removed only after it succeeded.
	Archive func(ctx context.Context, b *Backup) (string, error)
	// KeepSource leaves archived backups in place (archive without --remove).
	KeepSource bool
	// RemoveProgress, when set, is called as each backup's removal starts
	// and returns what is told the number of files deleted so far (or nil).
	RemoveProgress func(b *Backup) func(files int64)
	// StepDelay is a pause after each step. Test-only (crash tests set it
	// through MBAUDIT_TEST_STEP_DELAY to kill the process between steps).
	StepDelay time.Duration
}

// Apply carries out the plan's removals, one backup at a time, with the
// roots' locks held by the caller. Right before acting on a backup it
// checks it again (Recheck); a backup that changed since the plan, or any
// backup while a backup program runs, is left alone and its row says why.
// Removal renames the folder into the root's holding folder (atomic, same
// file system) and then deletes it there. A cancelled ctx stops between
// steps: every backup is then intact in place or gone from the root.
func Apply(ctx context.Context, p *Plan, opt ApplyOptions) error {
	logf := func(format string, args ...any) {
		if opt.Log != nil {
			opt.Log(fmt.Sprintf(format, args...))
		}
	}
	pause := func() error {
		if opt.StepDelay > 0 {
			select {
			case <-time.After(opt.StepDelay):
			case <-ctx.Done():
			}
		}
		return ctx.Err()
	}
	for _, row := range p.Acting() {
		if err := ctx.Err(); err != nil {
			return err
		}
		b := row.Backup
		if row.Action == ActionArchive && opt.Archive == nil {
			row.Err = errors.New("no archive folder given")
			continue
		}
		if opt.BackupProgram != nil {
			if prog := opt.BackupProgram(); prog != "" {
				row.Err = fmt.Errorf("left alone: backup program running: %s", prog)
				logf("skip %s: %v", b.ID, row.Err)
				continue
			}
		}
		if opt.Recheck != nil {
			now, err := opt.Recheck(ctx, b)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				row.Err = fmt.Errorf("left alone: cannot check it again: %w", err)
				logf("skip %s: %v", b.ID, row.Err)
				continue
			}
			if why := changed(b, now); why != "" {
				row.Err = fmt.Errorf("left alone: changed since the plan: %s", why)
				logf("skip %s: %v", b.ID, row.Err)
				continue
			}
		}
		if err := pause(); err != nil {
			return err
		}
		if row.Action == ActionArchive {
			logf("archiving %s (%s)", b.Path, strings.Join(row.Reasons, ", "))
			dst, err := opt.Archive(ctx, b)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				row.Err = fmt.Errorf("left alone: archiving failed: %w", err)
				logf("could not archive %s: %v", b.Path, err)
				continue
			}
			logf("archived %s to %s", b.Path, dst)
			if opt.KeepSource {
				row.Done = true
				continue
			}
			if err := pause(); err != nil {
				return err
			}
		}
		logf("removing %s (%s)", b.Path, strings.Join(row.Reasons, ", "))
		var progress func(int64)
		if opt.RemoveProgress != nil {
			progress = opt.RemoveProgress(b)
		}
		if err := removeBackup(ctx, row.Root, b, pause, progress); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			row.Err = err
			logf("could not remove %s: %v", b.Path, err)
			continue
		}
		row.Done = true
		logf("removed %s", b.Path)
	}
	return ctx.Err()
}

// changed says how a backup differs from what the plan saw, or "".
func changed(was, now *Backup) string {
	var d []string
	if now.Symlink != was.Symlink {
		d = append(d, "now a symbolic link")
	}
	if now.State != was.State {
		d = append(d, fmt.Sprintf("state %s, was %s", now.State, was.State))
	}
	if now.Usage.DiskBytes != was.Usage.DiskBytes {
		d = append(d, fmt.Sprintf("size %d bytes, was %d", now.Usage.DiskBytes, was.Usage.DiskBytes))
	}
	if !now.NewestChange.Equal(was.NewestChange) {
		d = append(d, "written since the plan")
	}
	return strings.Join(d, "; ")
}

// removeBackup renames the backup into the root's holding folder, then
// deletes it there. If the process dies after the rename, the next run's
// FinishTrash completes the deletion. progress, when not nil, is told the
// number of files deleted so far.
func removeBackup(ctx context.Context, root string, b *Backup, pause func() error, progress func(int64)) error {
	if b.Symlink {
		return errors.New("a symbolic link: never followed for removal")
	}
	fi, err := os.Lstat(b.Path)
	if err != nil {
		return fmt.Errorf("left alone: %w", err)
	}
	if !fi.IsDir() {
		return errors.New("left alone: no longer a folder")
	}
	trash := filepath.Join(root, TrashName)
	if err := os.Mkdir(trash, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("left alone: creating %s: %w", trash, err)
	}
	dst := filepath.Join(trash, b.ID)
	for i := 1; ; i++ {
		if _, err := os.Lstat(dst); errors.Is(err, os.ErrNotExist) {
			break
		}
		dst = filepath.Join(trash, b.ID+"."+strconv.Itoa(i))
	}
	if err := os.Rename(b.Path, dst); err != nil {
		return fmt.Errorf("left alone: moving it aside: %w", err)
	}
	// From here the backup is out of the root; a failure below leaves it
	// in the holding folder, which the next run empties.
	if err := pause(); err != nil {
		return err
	}
	// Delete in two halves with a step between them, so that an
	// interruption can land in the middle of a deletion (crash tests).
	var files int64
	entries, err := os.ReadDir(dst)
	if err == nil {
		for i, e := range entries {
			if err := removeCounting(filepath.Join(dst, e.Name()), e.IsDir(), &files, progress); err != nil {
				return fmt.Errorf("moved to %s but not deleted: %w", dst, err)
			}
			if i == len(entries)/2 {
				if err := pause(); err != nil {
					return err
				}
			}
		}
	}
	if err := os.RemoveAll(dst); err != nil {
		return fmt.Errorf("moved to %s but not deleted: %w", dst, err)
	}
	os.Remove(trash) // only when empty
	return nil
}

// removeCounting deletes p (a folder with all it holds when isDir) and
// tells progress of each file deleted. A folder it cannot list is left to
// os.RemoveAll.
func removeCounting(p string, isDir bool, n *int64, progress func(int64)) error {
	if isDir {
		entries, err := os.ReadDir(p)
		if err != nil {
			return os.RemoveAll(p)
		}
		for _, e := range entries {
			if err := removeCounting(filepath.Join(p, e.Name()), e.IsDir(), n, progress); err != nil {
				return err
			}
		}
		return os.RemoveAll(p)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	*n++
	if progress != nil {
		progress(*n)
	}
	return nil
}

// BackupPrograms are the programs that write backups: while one runs, prune
// touches nothing.
var BackupPrograms = []string{"AppleMobileBackup", "AppleMobileDeviceHelper", "idevicebackup2", "pymobiledevice3"}

// RunningBackupProgram returns the name of a backup program among the
// process names, or "". Names may be cut short (Linux keeps 15 bytes of a
// command's name) or be paths.
func RunningBackupProgram(names []string) string {
	for _, n := range names {
		n = filepath.Base(n)
		if n == "" {
			continue
		}
		for _, p := range BackupPrograms {
			if n == p || (len(n) >= 15 && strings.HasPrefix(p, n)) {
				return p
			}
		}
	}
	return ""
}

// ProcessNames lists the names of the running processes: on Linux from
// /proc (each command's name and the base names of its first two
// arguments, so that `python3 pymobiledevice3 ...` counts), on macOS from
// `ps -axo comm`. ok is false when the processes cannot be seen.
func ProcessNames() (names []string, ok bool) {
	switch runtime.GOOS {
	case "linux":
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return nil, false
		}
		for _, e := range entries {
			if _, err := strconv.Atoi(e.Name()); err != nil {
				continue
			}
			if comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm")); err == nil {
				names = append(names, strings.TrimSpace(string(comm)))
			}
			if cl, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil {
				args := strings.Split(string(cl), "\x00")
				for i := 0; i < len(args) && i < 2; i++ {
					names = append(names, filepath.Base(args[i]))
				}
			}
		}
		return names, true
	case "darwin":
		out, err := exec.Command("ps", "-axo", "comm").Output()
		if err != nil {
			return nil, false
		}
		return strings.Split(string(out), "\n"), true
	}
	return nil, false
}
