package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mbaudit/mbaudit/backup"
	"github.com/mbaudit/mbaudit/backup/backuptest"
)

// pruneRoot writes a root with one healthy backup and n incomplete dated
// copies (missing blobs, which mtimes cannot change) of the same device.
// It returns the root, the healthy backup's path and the copies' paths.
func pruneRoot(t *testing.T, n int) (string, string, []string) {
	t.Helper()
	root := t.TempDir()
	keep := backuptest.MustWrite(t, root, backuptest.Seed(1), backuptest.Files(20))
	udid := filepath.Base(keep.Path)
	var gone []string
	for i := 0; i < n; i++ {
		b := backuptest.MustWrite(t, root, backuptest.Seed(int64(2+i)), backuptest.Files(20), backuptest.UDID(udid),
			backuptest.DatedCopy(time.Date(2025, 1, 1+i, 0, 0, 0, 0, time.UTC)), backuptest.MissingBlobs(2))
		gone = append(gone, b.Path)
	}
	return root, keep.Path, gone
}

func TestPruneExitStatus(t *testing.T) {
	root, _, _ := pruneRoot(t, 1)
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"no rule", []string{"prune", "-n", root}, 2},
		{"allow-last is not a rule", []string{"prune", "-n", "--allow-last", root}, 2},
		{"ambiguous duration", []string{"prune", "-n", "--keep-within", "5m", root}, 2},
		{"bad size", []string{"prune", "-n", "--max-total", "lots", root}, 2},
		{"negative keep-last", []string{"prune", "-n", "--keep-last", "-1", root}, 2},
		{"dry run", []string{"prune", "-n", "--incomplete", root}, 0},
		{"dry run flags after path", []string{"prune", root, "--dry-run", "--keep-last", "1"}, 0},
		{"no terminal and no --yes", []string{"prune", "--incomplete", root}, 2},
		{"missing root", []string{"prune", "-n", "--incomplete", root, filepath.Join(root, "nope")}, 2},
		{"help", []string{"prune", "--help"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := backuptest.HashTree(t, root)
			code, _, stderr := run(t, testEnv(t), tt.args...)
			if code != tt.want {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.want, stderr)
			}
			if code == 2 && !strings.HasPrefix(stderr, "mbaudit: error: ") {
				t.Errorf("stderr %q does not say what went wrong", stderr)
			}
			if backuptest.HashTree(t, root) != before {
				t.Errorf("the tree changed")
			}
		})
	}
}

// --dry-run prints the plan and changes nothing, not even a lock file.
func TestPruneDryRunChangesNothing(t *testing.T) {
	root, keep, gone := pruneRoot(t, 2)
	before := backuptest.HashTree(t, root)
	code, out, stderr := run(t, testEnv(t), "prune", "--dry-run", "--format", "json", "--keep-last", "1", "--incomplete", root)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if after := backuptest.HashTree(t, root); after != before {
		t.Errorf("tree changed by --dry-run")
	}
	var doc struct {
		DryRun  bool `json:"dry_run"`
		Backups []struct {
			Path, Action string
			Reasons      []string
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{keep: "keep", gone[0]: "remove", gone[1]: "remove"}
	for _, r := range doc.Backups {
		if want[r.Path] != r.Action {
			t.Errorf("%s: %s %v, want %s", r.Path, r.Action, r.Reasons, want[r.Path])
		}
	}
	if !doc.DryRun || len(doc.Backups) != 3 {
		t.Errorf("doc %+v", doc)
	}
}

func TestPruneRemoves(t *testing.T) {
	root, keep, gone := pruneRoot(t, 2)
	keepHash := backuptest.HashTree(t, keep)
	logFile := filepath.Join(t.TempDir(), "prune.log")
	code, out, stderr := run(t, testEnv(t), "prune", "--yes", "--incomplete", "--log", logFile, root)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, g := range gone {
		if _, err := os.Stat(g); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there", g)
		}
		if !strings.Contains(stderr, "removed "+g) {
			t.Errorf("stderr does not log the removal of %s:\n%s", g, stderr)
		}
	}
	if backuptest.HashTree(t, keep) != keepHash {
		t.Errorf("kept backup changed")
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 1 {
		t.Errorf("root holds %d entries, want only the kept backup (no lock, no trash)", len(entries))
	}
	if log, _ := os.ReadFile(logFile); !strings.Contains(string(log), "removed "+gone[0]) {
		t.Errorf("log file:\n%s", log)
	}
	if !strings.Contains(out, "done") {
		t.Errorf("table does not say done:\n%s", out)
	}
}

func TestPruneAsksOnTerminal(t *testing.T) {
	for _, answer := range []string{"n\n", "y\n"} {
		t.Run(strings.TrimSpace(answer), func(t *testing.T) {
			root, _, gone := pruneRoot(t, 1)
			env := testEnv(t)
			env.Stdin = strings.NewReader(answer)
			env.IsTerminal = func(s any) bool { return s == env.Stdin }
			code, _, stderr := run(t, env, "prune", "--incomplete", root)
			if !strings.Contains(stderr, "Remove 1 backup, ") || !strings.Contains(stderr, "? [y/N]") {
				t.Errorf("no prompt on stderr:\n%s", stderr)
			}
			_, err := os.Stat(gone[0])
			if answer == "y\n" && (code != 0 || err == nil) {
				t.Errorf("yes: exit %d, stat %v: %s", code, err, stderr)
			}
			if answer == "n\n" && (code != 2 || err != nil) {
				t.Errorf("no: exit %d, stat %v", code, err)
			}
		})
	}
}

// A second prune while one holds the root's lock exits 2 naming it.
func TestPruneLocked(t *testing.T) {
	root, _, gone := pruneRoot(t, 1)
	l, err := backup.LockRoot(root, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	code, _, stderr := run(t, testEnv(t), "prune", "--yes", "--incomplete", root)
	if code != 2 || !strings.Contains(stderr, "locked by another mbaudit (pid ") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
	if _, err := os.Stat(gone[0]); err != nil {
		t.Errorf("removed while locked: %v", err)
	}
}

// A lock file left by a dead process is taken over with a warning, and
// leftovers in the holding folder are finished and reported.
func TestPruneRecovers(t *testing.T) {
	root, keep, gone := pruneRoot(t, 1)
	data, _ := json.Marshal(backup.LockInfo{PID: 999999, Host: "old", Started: fixedNow})
	os.WriteFile(filepath.Join(root, backup.LockName), data, 0o644)
	trash := filepath.Join(root, backup.TrashName)
	os.Mkdir(trash, 0o700)
	leftover := backuptest.MustWrite(t, trash, backuptest.Seed(9), backuptest.Files(3), backuptest.UDID(filepath.Base(keep)),
		backuptest.DatedCopy(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)))
	code, _, stderr := run(t, testEnv(t), "prune", "--yes", "--incomplete", root)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "warning: took over a stale lock") || !strings.Contains(stderr, "pid 999999") {
		t.Errorf("no stale-lock warning:\n%s", stderr)
	}
	if !strings.Contains(stderr, "finished removing 1 backup(s) an interrupted prune left") || !strings.Contains(stderr, filepath.Base(leftover.Path)) {
		t.Errorf("leftover not reported:\n%s", stderr)
	}
	for _, p := range []string{trash, gone[0], filepath.Join(root, backup.LockName)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there", p)
		}
	}
}

// TestPruneHelperProcess is not a test: the crash test runs the test
// binary as mbaudit through it.
func TestPruneHelperProcess(t *testing.T) {
	args := os.Getenv("MBAUDIT_HELPER_ARGS")
	if args == "" {
		t.Skip("only run by TestPruneCrash")
	}
	os.Exit(Main(context.Background(), append([]string{"mbaudit"}, strings.Split(args, "\x1f")...), OSEnv()))
}

// Crash safety with real processes: prune is killed with SIGKILL at many
// points of its work. After each kill every backup is either intact in its
// place or gone from the root (never half-deleted among the root's
// children), and the next run finishes the job and cleans up.
func TestPruneCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("kills real processes")
	}
	for _, after := range []time.Duration{0, 30, 80, 150, 220, 300, 400, 500, 650, 800, 1000, 1300, 1800} {
		after := after * time.Millisecond
		t.Run(after.String(), func(t *testing.T) {
			root, keep, gone := pruneRoot(t, 3)
			hashes := map[string]string{}
			for _, p := range append([]string{keep}, gone...) {
				hashes[filepath.Base(p)] = backuptest.HashTree(t, p)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestPruneHelperProcess$")
			cmd.Env = append(os.Environ(),
				"MBAUDIT_HELPER_ARGS="+strings.Join([]string{"prune", "--yes", "--incomplete", "--quiet", root}, "\x1f"),
				stepDelayEnv+"=40ms")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(after)
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()

			entries, err := os.ReadDir(root)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), backup.TrashPrefix) {
					continue
				}
				want, ok := hashes[e.Name()]
				if !ok {
					t.Errorf("unexpected %s in the root", e.Name())
				} else if got := backuptest.HashTree(t, filepath.Join(root, e.Name())); got != want {
					t.Errorf("%s is in the root but not intact", e.Name())
				}
			}
			if _, err := os.Stat(keep); err != nil {
				t.Fatalf("the kept backup is gone: %v", err)
			}
			left, _ := os.ReadDir(filepath.Join(root, backup.TrashName))
			t.Logf("killed after %v: %d of %d backups still in the root, %d in the holding folder",
				after, len(entries)-countPrefix(entries, backup.TrashPrefix)-1, len(gone), len(left))

			code, _, stderr := run(t, testEnv(t), "prune", "--yes", "--incomplete", root)
			if code != 0 {
				t.Fatalf("next run: exit %d: %s", code, stderr)
			}
			entries, _ = os.ReadDir(root)
			if len(entries) != 1 || entries[0].Name() != filepath.Base(keep) {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("after the next run the root holds %v, want only the kept backup", names)
			}
			if backuptest.HashTree(t, keep) != hashes[filepath.Base(keep)] {
				t.Errorf("kept backup changed")
			}
		})
	}
}

func countPrefix(es []os.DirEntry, prefix string) int {
	n := 0
	for _, e := range es {
		if strings.HasPrefix(e.Name(), prefix) {
			n++
		}
	}
	return n
}
