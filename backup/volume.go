package backup

import (
	"golang.org/x/sys/unix"
)

// Volume is a file system that holds at least one root.
type Volume struct {
	Path       string // the first root seen on it
	Dev        uint64
	FreeBytes  int64 // available to an unprivileged user
	TotalBytes int64
}

// Volumes returns the volumes that hold the paths, each once, in the order
// of the paths. Paths that cannot be examined are left out.
func Volumes(paths []string) []Volume {
	var out []Volume
	seen := map[uint64]bool{}
	for _, p := range paths {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			continue
		}
		dev := uint64(st.Dev)
		if seen[dev] {
			continue
		}
		var fs unix.Statfs_t
		if err := unix.Statfs(p, &fs); err != nil {
			continue
		}
		seen[dev] = true
		bsize := uint64(fs.Bsize)
		out = append(out, Volume{
			Path: p, Dev: dev,
			FreeBytes:  int64(uint64(fs.Bavail) * bsize),
			TotalBytes: int64(uint64(fs.Blocks) * bsize),
		})
	}
	return out
}
