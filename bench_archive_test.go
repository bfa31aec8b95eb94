package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mbaudit/mbaudit/backup/backuptest"
)

// BenchmarkArchive is `mbaudit archive` (write, sync, read back and compare,
// sidecar) on one generated backup of a few GB (MBAUDIT_BENCH_ARCHIVE_GB,
// default 2) beside `tar -I zstd -cf` of the same folder. It reports the
// ratio; it never fails on it.
func BenchmarkArchive(b *testing.B) {
	if _, err := exec.LookPath("zstd"); err != nil {
		b.Skip("no zstd binary to compare with")
	}
	gb := int64(2)
	if s := os.Getenv("MBAUDIT_BENCH_ARCHIVE_GB"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
			gb = n
		}
	}
	const fileSize = 1 << 20
	dir := benchDir(b, 3*gb<<30+(512<<20))
	root := filepath.Join(dir, "archive-root")
	os.RemoveAll(root)
	if err := os.MkdirAll(root, 0o755); err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(root)
	bk, err := backuptest.Write(root, backuptest.Seed(42), backuptest.Files(int(gb<<30/fileSize)),
		backuptest.FileSizes(fileSize/2, fileSize*3/2))
	if err != nil {
		b.Fatal(err)
	}
	bin := binary(b)
	out := filepath.Join(dir, "archive-out")
	clean := func() { os.RemoveAll(out); os.MkdirAll(out, 0o755) }
	defer os.RemoveAll(out)
	id := filepath.Base(bk.Path)
	timed(b, []int{0}, "du", "-s", bk.Path) // warm the cache
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clean()
		mb, rss := timed(b, []int{0}, bin, "archive", "--quiet", "--to", out, bk.Path)
		clean()
		tz, _ := timed(b, []int{0}, "tar", "-I", "zstd", "-cf", filepath.Join(out, id+".tar.zst"), "-C", root, id)
		b.ReportMetric(mb.Seconds(), "mbaudit-s")
		b.ReportMetric(tz.Seconds(), "tar-zstd-s")
		b.ReportMetric(mb.Seconds()/tz.Seconds(), "x-tar-zstd")
		b.ReportMetric(float64(rss)/(1<<20), "peak-MB")
		b.Logf("archive of %d GB: mbaudit %v (writes, reads back, compares), tar -I zstd %v (%.2fx), peak RSS %d MB",
			gb, mb.Round(time.Millisecond), tz.Round(time.Millisecond), mb.Seconds()/tz.Seconds(), rss>>20)
	}
}
