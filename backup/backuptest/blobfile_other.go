//go:build !linux

package backuptest

import (
	"os"
	"time"
)

// writeBlobFile creates path holding data with modification and access time t.
func writeBlobFile(path string, data []byte, t time.Time) error {
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	return os.Chtimes(path, t, t)
}
