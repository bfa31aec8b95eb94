package backuptest

import (
	"os"
	"path/filepath"
	"testing"
)

// RealBackupID is the folder of the real iOS 14.3 backup that the project's
// shared fixtures hold (see ../shared/fixtures/real/README.md).
const RealBackupID = "1cb128eafa77c5be74283e9a3a2130af36a3c059"

// RealBackup returns the path of the real backup in ../shared beside the
// checkout, found from the module root, or skips the test when it is not
// there (a clone outside this setup). Tests read it; never copy it into the
// repository.
func RealBackup(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Skip("real backup data not found: no go.mod above the test")
		}
		dir = parent
	}
	p := filepath.Join(filepath.Dir(dir), "shared", "fixtures", "real", "mvt-ios14", RealBackupID)
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("real backup data not found at %s (clone beside ../shared to run this test)", p)
	}
	return p
}
