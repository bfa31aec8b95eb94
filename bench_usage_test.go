package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mbaudit/mbaudit/backup/backuptest"
)

// BenchmarkUsage500k is `mbaudit usage` on one backup of 500,000 files
// beside du -s of the same folder: it reads the index once and stats each
// listed blob, never reading content.
func BenchmarkUsage500k(b *testing.B) {
	files := 500000
	dir := benchDir(b, int64(files)*12<<10)
	root := filepath.Join(dir, "usage-500000")
	bk := filepath.Join(root, "bench")
	if _, err := os.Stat(bk); err != nil {
		w, err := backuptest.Write(root, backuptest.Seed(7), backuptest.UDID("bench"), backuptest.Files(files))
		if err != nil {
			b.Fatal(err)
		}
		bk = w.Path
	}
	compareWithDu(b, bk, "usage", "--quiet", "--top", "10", bk)
}
