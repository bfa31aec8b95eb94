package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mbaudit/mbaudit/backup/backuptest"
)

// The benchmarks run the real binary on generated backups beside `du -s` of
// the same tree, warm cache, and report the ratio and the peak memory
// (max RSS). They never fail on a ratio: `make bench` prints them.

// benchDir returns a scratch folder for generated trees, or skips when the
// disk has less than need bytes free.
func benchDir(b *testing.B, need int64) string {
	b.Helper()
	dir := os.Getenv("MBAUDIT_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil {
		if free := int64(st.Bavail) * int64(st.Bsize); free < need {
			b.Skipf("only %d MB free under %s, need %d MB", free>>20, dir, need>>20)
		}
	}
	return dir
}

// binary builds mbaudit into the benchmark's temporary folder, which the
// testing package removes when the benchmark ends (a binary left in
// $TMPDIR by every run adds up).
func binary(b *testing.B) string {
	b.Helper()
	out := filepath.Join(b.TempDir(), "mbaudit")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("building mbaudit: %v", err)
	}
	return out
}

// timed runs a command to its end, returning its wall time and peak RSS.
//
// The peak comes from GNU time, which forks the command from its own small
// process: Linux carries ru_maxrss across exec, so a command started
// straight from this (large) test process would report the test's own
// memory as its peak. Without /usr/bin/time the peak is reported as 0.
func timed(b *testing.B, okCodes []int, name string, args ...string) (time.Duration, int64) {
	b.Helper()
	wall, rss, _ := timedCPU(b, okCodes, name, args...)
	return wall, rss
}

// timedCPU is timed that also returns the command's CPU time (user and
// system), which other work on the machine disturbs less than the wall
// time. It is 0 without /usr/bin/time.
func timedCPU(b *testing.B, okCodes []int, name string, args ...string) (wall time.Duration, rss int64, cpu time.Duration) {
	b.Helper()
	statsFile := filepath.Join(b.TempDir(), "stats")
	cmd := exec.Command(name, args...)
	if _, err := os.Stat("/usr/bin/time"); err == nil {
		cmd = exec.Command("/usr/bin/time", append([]string{"-f", "%M %U %S", "-o", statsFile, name}, args...)...)
	}
	start := time.Now()
	err := cmd.Run()
	wall = time.Since(start)
	if err != nil {
		code := -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		ok := false
		for _, c := range okCodes {
			ok = ok || c == code
		}
		if !ok {
			b.Fatalf("%s %v: %v", name, args, err)
		}
	}
	if data, err := os.ReadFile(statsFile); err == nil {
		// GNU time writes "Command exited with non-zero status N" first
		// when the command fails; the numbers are on the last line.
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if f := strings.Fields(lines[len(lines)-1]); len(f) == 3 {
			if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				rss = n * 1024 // kilobytes
			}
			for _, s := range f[1:] {
				if sec, err := strconv.ParseFloat(s, 64); err == nil {
					cpu += time.Duration(sec * float64(time.Second))
				}
			}
		}
	}
	return wall, rss, cpu
}

// compareWithDu runs du -s and then the mbaudit command on dir, three times
// each after a warm-up, and reports the best times, their ratio, the least
// CPU time mbaudit took and its peak memory.
func compareWithDu(b *testing.B, dir string, args ...string) {
	bin := binary(b)
	timed(b, []int{0}, "du", "-s", dir) // warm the cache
	timed(b, []int{0, 1}, bin, args...)
	b.ResetTimer()
	best := func(name string, okCodes []int, args ...string) (time.Duration, int64, time.Duration) {
		var bt, bc time.Duration
		var rss int64
		for i := 0; i < 3; i++ {
			d, r, c := timedCPU(b, okCodes, name, args...)
			if bt == 0 || d < bt {
				bt = d
			}
			if bc == 0 || c < bc {
				bc = c
			}
			rss = max(rss, r)
		}
		return bt, rss, bc
	}
	for i := 0; i < b.N; i++ {
		du, _, _ := best("du", []int{0}, "-s", dir)
		mb, rss, cpu := best(bin, []int{0, 1}, args...)
		b.ReportMetric(du.Seconds(), "du-s")
		b.ReportMetric(mb.Seconds(), "mbaudit-s")
		b.ReportMetric(cpu.Seconds(), "mbaudit-cpu-s")
		b.ReportMetric(mb.Seconds()/du.Seconds(), "x-du")
		b.ReportMetric(float64(rss)/(1<<20), "peak-MB")
		b.Logf("%v: mbaudit %v (CPU %v), du -s %v (%.2fx), peak RSS %d MB", args[:1], mb.Round(time.Millisecond),
			cpu.Round(10*time.Millisecond), du.Round(time.Millisecond), mb.Seconds()/du.Seconds(), rss>>20)
	}
}

// BenchmarkList is `mbaudit list` on a root of 10 backups of 50,000 files.
func BenchmarkList(b *testing.B) {
	root := filepath.Join(benchDir(b, 6<<30), "list-root")
	if _, err := os.Stat(root); err != nil {
		for i := 0; i < 10; i++ {
			if _, err := backuptest.Write(root, backuptest.Seed(int64(100+i)), backuptest.Files(50000)); err != nil {
				b.Fatal(err)
			}
		}
	}
	compareWithDu(b, root, "list", "--quiet", root)
}

func benchVerify(b *testing.B, files int, deep bool) {
	dir := benchDir(b, int64(files)*12<<10)
	root := filepath.Join(dir, fmt.Sprintf("verify-%d", files))
	bk := filepath.Join(root, "bench")
	if _, err := os.Stat(bk); err != nil {
		w, err := backuptest.Write(root, backuptest.Seed(7), backuptest.UDID("bench"), backuptest.Files(files))
		if err != nil {
			b.Fatal(err)
		}
		bk = w.Path
	}
	args := []string{"verify", "--quiet", bk}
	if deep {
		args = append(args, "--deep")
	}
	compareWithDu(b, bk, args...)
}

// BenchmarkVerify100k and BenchmarkVerify500k show how verify's cost and
// memory grow with the number of files.
func BenchmarkVerify100k(b *testing.B) { benchVerify(b, 100000, false) }
func BenchmarkVerify500k(b *testing.B) { benchVerify(b, 500000, false) }
