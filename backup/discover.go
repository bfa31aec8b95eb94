package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// markers are the files whose presence makes a folder a backup.
var markers = []string{"Info.plist", "Manifest.plist", "Status.plist", "Manifest.db", "Manifest.mbdb"}

// TrashPrefix starts the names of mbaudit's own files and folders inside a
// root; they are never taken for backups.
const TrashPrefix = ".mbaudit-"

// RootProblem says why a root could not be used.
type RootProblem int

// The root problems.
const (
	RootMissing RootProblem = iota
	RootDangling
	RootNotFolder
	RootDenied
	RootUnreadable
)

// RootError is an error about a PATH given to mbaudit (or a default root):
// it is missing, a dangling link, not a folder, or cannot be read.
type RootError struct {
	Path    string
	Problem RootProblem
	Err     error
	GOOS    string
}

func (e *RootError) Error() string {
	switch e.Problem {
	case RootMissing:
		return fmt.Sprintf("%s does not exist (is the drive that holds it connected?)", e.Path)
	case RootDangling:
		target, _ := os.Readlink(e.Path)
		return fmt.Sprintf("%s is a link to %s, which does not exist (is that drive mounted?)", e.Path, target)
	case RootNotFolder:
		return fmt.Sprintf("%s is not a folder: pass a backup folder or a folder that holds backups", e.Path)
	case RootDenied:
		if e.GOOS == "darwin" {
			return fmt.Sprintf("cannot read %s: operation not permitted; give Full Disk Access to your terminal "+
				"(System Settings > Privacy & Security > Full Disk Access), or to the program that cron or launchd runs", e.Path)
		}
		return fmt.Sprintf("cannot read %s: permission denied; run mbaudit as the user who owns the backups", e.Path)
	}
	return fmt.Sprintf("cannot read %s: %s", e.Path, describeIOError(e.Err))
}

func (e *RootError) Unwrap() error { return e.Err }

// Candidate is a folder that discovery took for a backup.
type Candidate struct {
	Path    string
	Root    string // the PATH it was found under (itself when given directly)
	Symlink bool   // the folder is a symbolic link inside its root
}

// Discovery is the result of looking at the PATHs.
type Discovery struct {
	Roots      []string
	Candidates []Candidate
	// Skipped lists children of roots that are not backups.
	Skipped []string
	// Errors holds a *RootError for each PATH that could not be used.
	Errors []error
}

// Discover looks at each path: a backup folder is taken as it is; any other
// folder is a root whose direct children are examined. goos selects the
// wording of permission errors (Full Disk Access on macOS).
func Discover(paths []string, goos string) *Discovery {
	d := &Discovery{}
	seen := map[string]bool{}
	for _, p := range paths {
		d.Roots = append(d.Roots, p)
		if err := d.add(p, goos, seen); err != nil {
			d.Errors = append(d.Errors, err)
		}
	}
	return d
}

func (d *Discovery) add(p, goos string, seen map[string]bool) error {
	fi, err := os.Stat(p)
	if err != nil {
		return rootError(p, err, goos)
	}
	if !fi.IsDir() {
		return &RootError{Path: p, Problem: RootNotFolder, GOOS: goos}
	}
	if isBackup(p) {
		d.addCandidate(Candidate{Path: p, Root: p}, seen)
		return nil
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return rootError(p, err, goos)
	}
	for _, e := range entries {
		child := filepath.Join(p, e.Name())
		switch {
		case strings.HasPrefix(e.Name(), TrashPrefix):
			d.Skipped = append(d.Skipped, child)
		case e.Type()&fs.ModeSymlink != 0:
			if st, err := os.Stat(child); err == nil && st.IsDir() && isBackup(child) {
				d.addCandidate(Candidate{Path: child, Root: p, Symlink: true}, seen)
			} else {
				d.Skipped = append(d.Skipped, child)
			}
		case e.IsDir() && isBackup(child):
			d.addCandidate(Candidate{Path: child, Root: p}, seen)
		default:
			d.Skipped = append(d.Skipped, child)
		}
	}
	return nil
}

func (d *Discovery) addCandidate(c Candidate, seen map[string]bool) {
	key := filepath.Clean(c.Path)
	if abs, err := filepath.Abs(key); err == nil {
		key = abs
	}
	if seen[key] {
		return
	}
	seen[key] = true
	d.Candidates = append(d.Candidates, c)
}

func rootError(p string, err error, goos string) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if fi, lerr := os.Lstat(p); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return &RootError{Path: p, Problem: RootDangling, Err: err, GOOS: goos}
		}
		return &RootError{Path: p, Problem: RootMissing, Err: err, GOOS: goos}
	case errors.Is(err, fs.ErrPermission):
		return &RootError{Path: p, Problem: RootDenied, Err: err, GOOS: goos}
	}
	return &RootError{Path: p, Problem: RootUnreadable, Err: err, GOOS: goos}
}

// isBackup reports whether the folder holds any of the marker files.
func isBackup(dir string) bool {
	for _, m := range markers {
		if _, err := os.Lstat(filepath.Join(dir, m)); err == nil {
			return true
		}
	}
	return false
}

// ErrNoDefaultRoot is returned on systems where backups have no standard
// place (Linux: idevicebackup2 users choose their own folder).
var ErrNoDefaultRoot = errors.New("no default backup folder on this system")

// DefaultRoots returns the roots to use when no PATH is given: the
// colon-separated $MBAUDIT_ROOT, else the platform's default.
func DefaultRoots(getenv func(string) string, goos, home string) ([]string, error) {
	if v := getenv("MBAUDIT_ROOT"); v != "" {
		var roots []string
		for _, r := range strings.Split(v, ":") {
			if r != "" {
				roots = append(roots, r)
			}
		}
		if len(roots) > 0 {
			return roots, nil
		}
	}
	if goos == "darwin" && home != "" {
		return []string{filepath.Join(home, "Library", "Application Support", "MobileSync", "Backup")}, nil
	}
	return nil, ErrNoDefaultRoot
}

var datedCopy = regexp.MustCompile(`^(.+)-(\d{8}-\d{6})$`)

// SplitID splits a folder name into the device's UDID and, for a dated copy
// (<UDID>-YYYYMMDD-HHMMSS), the time in its name.
func SplitID(id string) (udid string, copyTime time.Time) {
	m := datedCopy.FindStringSubmatch(id)
	if m == nil {
		return id, time.Time{}
	}
	t, err := time.Parse("20060102-150405", m[2])
	if err != nil {
		return id, time.Time{}
	}
	return m[1], t
}

var udidPattern = regexp.MustCompile(`^([0-9a-fA-F]{40}|[0-9a-fA-F]{8}-[0-9a-fA-F]{16})$`)

// ValidUDID reports whether s has one of the two UDID forms: 40 hex
// characters (devices before 2018) or 8 hex, a dash and 16 hex.
func ValidUDID(s string) bool { return udidPattern.MatchString(s) }

// NewerThan orders two backups by last_backup, newest first; ties go by ID.
func NewerThan(a, b *Backup) bool {
	ta, tb := a.LastBackup(), b.LastBackup()
	if !ta.Equal(tb) {
		return ta.After(tb)
	}
	return a.ID < b.ID
}

func describeIOError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return err.Error()
}
