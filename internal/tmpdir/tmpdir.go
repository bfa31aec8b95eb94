// Package tmpdir makes mbaudit's private temporary folders: where a
// decrypted index or a copy of an index with its -wal or -journal is read,
// never beside a backup. Each is named after the process that made it, so
// that a later run removes what a killed one (kill -9) left behind.
package tmpdir

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// prefix names mbaudit's private temporary folders; the process ID
// after it lets a later run remove what a killed one left.
const prefix = "mbaudit-private-"

// Private makes a folder only the user can enter (0700) under the
// system's temporary folder, after removing those that runs which no longer
// exist left behind (killed before they could clean up).
func Private() (string, error) {
	Sweep()
	return os.MkdirTemp("", prefix+strconv.Itoa(os.Getpid())+"-")
}

// Sweep removes private temporary folders of mbaudit runs that are
// gone. A folder whose process still runs, or of another user, is left.
func Sweep() {
	tmp := os.TempDir()
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := unix.Kill(pid, 0); !errors.Is(err, unix.ESRCH) {
			continue // alive, or not ours to judge
		}
		_ = os.RemoveAll(filepath.Join(tmp, e.Name()))
	}
}
