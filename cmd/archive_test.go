package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

func TestArchiveExitStatus(t *testing.T) {
	root := t.TempDir()
	b := backuptest.MustWrite(t, root, backuptest.Seed(1), backuptest.Files(5))
	out := t.TempDir()
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"no --to", []string{"archive", b.Path}, 2},
		{"no backup", []string{"archive", "--to", out}, 2},
		{"bad format", []string{"archive", "--to", out, "--archive-format", "zip", b.Path}, 2},
		{"--to not a folder", []string{"archive", "--to", filepath.Join(out, "nope"), b.Path}, 2},
		{"remove without --yes off a terminal", []string{"archive", "--to", out, "--remove", b.Path}, 2},
		{"unarchive without --to", []string{"unarchive", filepath.Join(out, "x.tar.zst")}, 2},
		{"unarchive not an archive", []string{"unarchive", "--to", root, b.Path}, 2},
		{"prune archive-to not a folder", []string{"prune", "-n", "--incomplete", "--archive-to", filepath.Join(out, "nope"), root}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, testEnv(t), tt.args...)
			if code != tt.want {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.want, stderr)
			}
		})
	}
	if _, err := os.Stat(b.Path); err != nil {
		t.Errorf("backup touched: %v", err)
	}
}

// archive --remove, then unarchive: verify sees the same backup again.
func TestArchiveRoundTripCLI(t *testing.T) {
	root, keep, gone := pruneRoot(t, 1)
	_ = keep
	want := backuptest.HashTree(t, gone[0])
	out := t.TempDir()
	code, stdout, stderr := run(t, testEnv(t), "archive", "--to", out, "--remove", "--yes", "--format", "json", gone[0])
	if code != 0 {
		t.Fatalf("archive: exit %d: %s", code, stderr)
	}
	var doc struct {
		Backups []struct {
			Action string
			Done   bool
		}
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil || len(doc.Backups) != 1 || !doc.Backups[0].Done || doc.Backups[0].Action != "archive" {
		t.Fatalf("doc %+v (%v)", doc, err)
	}
	if _, err := os.Stat(gone[0]); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("source not removed")
	}
	arch := filepath.Join(out, filepath.Base(gone[0])+".tar.zst")
	if _, err := os.Stat(arch + ".json"); err != nil {
		t.Fatalf("no sidecar: %v", err)
	}
	code, _, stderr = run(t, testEnv(t), "unarchive", arch, "--to", root)
	if code != 0 {
		t.Fatalf("unarchive: exit %d: %s", code, stderr)
	}
	if backuptest.HashTree(t, gone[0]) != want {
		t.Errorf("restored backup differs")
	}
	// The incomplete backup is as incomplete as it was: verify says 1.
	code, _, _ = run(t, testEnv(t), "verify", gone[0])
	if code != 1 {
		t.Errorf("verify of the restored (incomplete) backup: exit %d, want 1", code)
	}
	code, _, stderr = run(t, testEnv(t), "unarchive", arch, "--to", root)
	if code != 2 || !strings.Contains(stderr, "already exists") {
		t.Errorf("second unarchive: exit %d: %s", code, stderr)
	}
	// Without --remove the backup stays.
	out2 := t.TempDir()
	if code, _, stderr := run(t, testEnv(t), "archive", "--to", out2, "--archive-format", "tar.gz", keep); code != 0 {
		t.Fatalf("archive tar.gz: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("archive without --remove removed the backup")
	}
	if _, err := os.Stat(filepath.Join(out2, filepath.Base(keep)+".tar.gz.json")); err != nil {
		t.Errorf("no tar.gz sidecar: %v", err)
	}
}

func TestPruneArchiveTo(t *testing.T) {
	root, keep, gone := pruneRoot(t, 2)
	out := t.TempDir()
	code, _, stderr := run(t, testEnv(t), "prune", "--yes", "--incomplete", "--archive-to", out, root)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, g := range gone {
		if _, err := os.Stat(g); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still in the root", g)
		}
		if _, err := os.Stat(filepath.Join(out, filepath.Base(g)+".tar.zst.json")); err != nil {
			t.Errorf("no archive for %s", g)
		}
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("kept backup gone")
	}
}

// Crash safety while archiving: after a SIGKILL at any point, each backup
// is intact in place or fully archived (archive and sidecar, verifiable),
// and the next run finishes.
func TestArchiveCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("kills real processes")
	}
	midWrite := 0 // kills that left a temporary archive
	defer func() {
		if midWrite == 0 && !t.Failed() {
			t.Errorf("no kill landed while an archive was written")
		}
	}()
	for _, after := range []time.Duration{0, 100, 200, 300, 450, 600, 800, 1100, 1500} {
		after := after * time.Millisecond
		t.Run(after.String(), func(t *testing.T) {
			root, keep, gone := pruneRoot(t, 3)
			out := t.TempDir()
			hashes := map[string]string{}
			for _, p := range append([]string{keep}, gone...) {
				hashes[filepath.Base(p)] = backuptest.HashTree(t, p)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestPruneHelperProcess$")
			cmd.Env = append(os.Environ(),
				"MBAUDIT_HELPER_ARGS="+strings.Join([]string{"prune", "--yes", "--incomplete", "--quiet", "--archive-to", out, root}, "\x1f"),
				stepDelayEnv+"=40ms")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(after)
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()

			for _, g := range gone {
				id := filepath.Base(g)
				if _, err := os.Stat(g); err == nil {
					if backuptest.HashTree(t, g) != hashes[id] {
						t.Errorf("%s in place but changed", id)
					}
					continue
				}
				// Gone from the root: it must be fully archived.
				arch := filepath.Join(out, id+".tar.zst")
				x := t.TempDir()
				if _, err := backup.Unarchive(context.Background(), arch, x); err != nil {
					t.Errorf("%s gone from the root but not fully archived: %v", id, err)
				} else if backuptest.HashTree(t, filepath.Join(x, id)) != hashes[id] {
					t.Errorf("%s: archive differs from the backup", id)
				}
			}
			entries, _ := os.ReadDir(root)
			for _, e := range entries {
				if _, ok := hashes[e.Name()]; !ok && !strings.HasPrefix(e.Name(), backup.TrashPrefix) {
					t.Errorf("unexpected %s in the root", e.Name())
				}
			}
			left, _ := os.ReadDir(filepath.Join(root, backup.TrashName))
			t.Logf("killed after %v: %d entries in the root, %d in the holding folder", after, len(entries), len(left))

			tmps := archiveTemps(t, out)
			t.Logf("temporary archives left: %q", tmps)
			if len(tmps) > 0 {
				midWrite++
			}
			code, _, stderr := run(t, testEnv(t), "prune", "--yes", "--incomplete", "--archive-to", out, root)
			if code != 0 {
				t.Fatalf("next run: exit %d: %s", code, stderr)
			}
			if left := archiveTemps(t, out); len(left) > 0 {
				t.Errorf("after the next run %s still holds %q", out, left)
			}
			for _, n := range tmps {
				if !strings.Contains(stderr, "mbaudit: warning: removed a partial archive left by an interrupted run: "+filepath.Join(out, n)+"\n") {
					t.Errorf("next run did not say it removed %s:\n%s", n, stderr)
				}
			}
			entries, _ = os.ReadDir(root)
			if len(entries) != 1 {
				t.Errorf("after the next run the root holds %d entries, want 1", len(entries))
			}
			for _, g := range gone {
				if _, err := os.Stat(filepath.Join(out, filepath.Base(g)+".tar.zst.json")); err != nil {
					t.Errorf("%s not archived after the next run", filepath.Base(g))
				}
			}
		})
	}
}

// archiveTemps lists the temporary files in an archive folder.
func archiveTemps(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), backup.TrashPrefix) || strings.Contains(e.Name(), ".tmp") {
			names = append(names, e.Name())
		}
	}
	return names
}

// A temporary archive left by a dead writer on this host is removed and
// named on stderr; one without a pid is left alone with a warning.
func TestArchiveRemovesDeadTemps(t *testing.T) {
	root := t.TempDir()
	b := backuptest.MustWrite(t, root, backuptest.Seed(1), backuptest.Files(5))
	out := t.TempDir()
	dead := exec.Command(os.Args[0], "-test.run=^$")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	// The name of a writer that died on this host (hosts with odd
	// characters in their name are not tried).
	deadName := fmt.Sprintf("%sarchive-%d@%s-77.tmp", backup.TrashPrefix, dead.ProcessState.Pid(), host)
	oldName := backup.TrashPrefix + "archive-12345.tmp"
	for _, n := range []string{deadName, oldName} {
		if err := os.WriteFile(filepath.Join(out, n), []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, _, stderr := run(t, testEnv(t), "archive", "--to", out, b.Path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "mbaudit: warning: removed a partial archive left by an interrupted run: "+filepath.Join(out, deadName)+"\n") {
		t.Errorf("no word of the removal:\n%s", stderr)
	}
	if _, err := os.Stat(filepath.Join(out, deadName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left", deadName)
	}
	if _, err := os.Stat(filepath.Join(out, oldName)); err != nil {
		t.Errorf("%s (no pid) removed", oldName)
	}
	if !strings.Contains(stderr, "mbaudit: warning: left "+filepath.Join(out, oldName)+" alone") {
		t.Errorf("no warning about %s:\n%s", oldName, stderr)
	}
}

// On a terminal archive and removal show a progress line on stderr; in a
// pipe, none.
func TestArchiveProgressLine(t *testing.T) {
	for _, tty := range []bool{false, true} {
		t.Run(fmt.Sprintf("terminal=%v", tty), func(t *testing.T) {
			_, _, gone := pruneRoot(t, 1)
			env := testEnv(t)
			env.IsTerminal = func(any) bool { return tty }
			// A clock that moves, so that the line is not held back.
			now := fixedNow
			env.Now = func() time.Time { now = now.Add(300 * time.Millisecond); return now }
			code, _, stderr := run(t, env, "archive", "--to", t.TempDir(), "--remove", "--yes", gone[0])
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			id := filepath.Base(gone[0])
			archiving := strings.Contains(stderr, "\r\x1b[Karchiving ")
			removing := strings.Contains(stderr, "\r\x1b[Kremoving "+id+": ")
			if tty != archiving || tty != removing {
				t.Errorf("archiving line %v, removing line %v, want %v:\n%q", archiving, removing, tty, stderr)
			}
			if tty {
				// Each line of its own starts after the progress line was cleared.
				for _, line := range strings.SplitAfter(stderr, "\n") {
					if strings.HasPrefix(line, "mbaudit: ") {
						continue
					}
					i := strings.LastIndex(line, "\r\x1b[K")
					if i >= 0 && strings.HasSuffix(line, "\n") && !strings.HasPrefix(line[i+len("\r\x1b[K"):], "mbaudit: ") {
						t.Errorf("a line printed over the progress line: %q", line)
					}
				}
			}
		})
	}
}
