package backup

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/mbaudit/mbaudit/backup/backuptest"
)

var archiveNow = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func listOne(t *testing.T, p string) *Backup {
	t.Helper()
	bs, err := List(context.Background(), []Candidate{{Path: p}}, Options{Now: archiveNow, BusyWindow: DefaultBusyWindow}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return bs[0]
}

// Archive, unarchive, then verify: the restored backup has the same files,
// sizes, hashes, modes and times, and verify finds it ok.
func TestArchiveRoundTrip(t *testing.T) {
	for _, format := range []string{FormatTarZst, FormatTarGz} {
		t.Run(format, func(t *testing.T) {
			root := t.TempDir()
			src := backuptest.MustWrite(t, root, backuptest.Seed(3), backuptest.Files(40))
			b := listOne(t, src.Path)
			before := backuptest.HashTree(t, src.Path)
			out := t.TempDir()
			side, dst, err := Archive(context.Background(), b, out, ArchiveOptions{Format: format, Now: archiveNow})
			if err != nil {
				t.Fatal(err)
			}
			if dst != filepath.Join(out, b.ID+"."+format) || side.ArchiveSHA256 == "" || side.Files == 0 {
				t.Errorf("dst %s, sidecar %+v", dst, side)
			}
			if _, err := os.Stat(dst + ".json"); err != nil {
				t.Errorf("no sidecar: %v", err)
			}
			if backuptest.HashTree(t, src.Path) != before {
				t.Errorf("archiving changed the source")
			}
			entries, _ := os.ReadDir(out)
			if len(entries) != 2 {
				t.Errorf("%d files in the archive folder, want the archive and its sidecar", len(entries))
			}
			// A plain tar with zstd can read it.
			if format == FormatTarZst {
				if _, err := exec.LookPath("zstd"); err == nil {
					x := t.TempDir()
					if o, err := exec.Command("tar", "-I", "zstd", "-xf", dst, "-C", x).CombinedOutput(); err != nil {
						t.Errorf("tar -I zstd: %v %s", err, o)
					} else if backuptest.HashTree(t, filepath.Join(x, b.ID)) != before {
						t.Errorf("tar extracts something else")
					}
				}
			}
			restoreRoot := t.TempDir()
			got, err := Unarchive(context.Background(), dst, restoreRoot)
			if err != nil {
				t.Fatal(err)
			}
			if backuptest.HashTree(t, got) != before {
				t.Errorf("restored tree differs from the source")
			}
			r := listOne(t, got)
			if _, err := Verify(context.Background(), r, VerifyOptions{Options: Options{Now: archiveNow, BusyWindow: DefaultBusyWindow}}); err != nil {
				t.Fatal(err)
			}
			if r.State != StateOK || r.Check == nil || r.Check.FilesChecked == 0 {
				t.Errorf("restored backup: %s %+v", r.State, r.Check)
			}
			if left, _ := os.ReadDir(restoreRoot); len(left) != 1 {
				t.Errorf("restore root holds %d entries, want 1", len(left))
			}
			// Never over an existing backup.
			if _, err := Unarchive(context.Background(), dst, restoreRoot); err == nil || !strings.Contains(err.Error(), "already exists") {
				t.Errorf("second unarchive: %v", err)
			}
		})
	}
}

// enospcWriter fails with ENOSPC once n bytes were written, as a full disk.
type enospcWriter struct {
	w io.Writer
	n int
}

func (e *enospcWriter) Write(p []byte) (int, error) {
	if len(p) > e.n {
		k, _ := e.w.Write(p[:e.n])
		e.n = 0
		return k, &os.PathError{Op: "write", Path: "archive", Err: syscall.ENOSPC}
	}
	e.n -= len(p)
	return e.w.Write(p)
}

// A disk that fills up leaves no partial archive and the source untouched.
func TestArchiveDiskFull(t *testing.T) {
	root := t.TempDir()
	src := backuptest.MustWrite(t, root, backuptest.Seed(4), backuptest.Files(40))
	b := listOne(t, src.Path)
	before := backuptest.HashTree(t, src.Path)
	for _, n := range []int{0, 100, 5000} {
		out := t.TempDir()
		opt := ArchiveOptions{Now: archiveNow, wrap: func(w io.Writer) io.Writer { return &enospcWriter{w: w, n: n} }}
		_, _, err := Archive(context.Background(), b, out, opt)
		if !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("after %d bytes: %v, want ENOSPC", n, err)
		}
		if entries, _ := os.ReadDir(out); len(entries) != 0 {
			t.Errorf("after %d bytes: %d files left in the archive folder", n, len(entries))
		}
	}
	if backuptest.HashTree(t, src.Path) != before {
		t.Errorf("source changed")
	}
}

// A real size-limited tmpfs, where this test may mount one.
func TestArchiveTmpfsFull(t *testing.T) {
	if os.Getenv("MBAUDIT_IN_UNSHARE") == "" {
		if _, err := exec.LookPath("unshare"); err != nil {
			t.Skip("no unshare: the disk-full case is covered by TestArchiveDiskFull's injected writer")
		}
		if out, err := exec.Command("unshare", "-m", "--", "mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", t.TempDir()).CombinedOutput(); err != nil {
			t.Skipf("cannot mount a tmpfs here (%v: %s): the disk-full case is covered by TestArchiveDiskFull", err, strings.TrimSpace(string(out)))
		}
		cmd := exec.Command("unshare", "-m", "--", os.Args[0], "-test.run=^TestArchiveTmpfsFull$", "-test.v")
		cmd.Env = append(os.Environ(), "MBAUDIT_IN_UNSHARE=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if !strings.Contains(string(out), "--- PASS") {
			t.Fatalf("inner run did not pass:\n%s", out)
		}
		return
	}
	root := t.TempDir()
	src := backuptest.MustWrite(t, root, backuptest.Seed(5), backuptest.Files(60), backuptest.FileSizes(4000, 8000))
	b := listOne(t, src.Path)
	before := backuptest.HashTree(t, src.Path)
	small := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", small).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v %s", err, out)
	}
	defer exec.Command("umount", small).Run()
	_, _, err := Archive(context.Background(), b, small, ArchiveOptions{Now: archiveNow})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("err %v, want ENOSPC", err)
	}
	if entries, _ := os.ReadDir(small); len(entries) != 0 {
		t.Errorf("%d files left on the full tmpfs", len(entries))
	}
	if backuptest.HashTree(t, src.Path) != before {
		t.Errorf("source changed")
	}
}

// writeTar writes a tar.zst with the given headers (regular files empty).
func writeTar(t *testing.T, p string, hdrs ...*tar.Header) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw, _ := zstd.NewWriter(f)
	tw := tar.NewWriter(zw)
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write(make([]byte, h.Size))
		}
	}
	tw.Close()
	zw.Close()
	f.Close()
}

func TestUnarchiveRefusesEscapes(t *testing.T) {
	const id = "00008110-000A11112222333E"
	dir := &tar.Header{Name: id + "/", Typeflag: tar.TypeDir, Mode: 0o755}
	tests := map[string]*tar.Header{
		"absolute":         {Name: "/etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1},
		"dot-dot":          {Name: id + "/../evil", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1},
		"outside id":       {Name: "other/Info.plist", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1},
		"absolute link":    {Name: id + "/l", Typeflag: tar.TypeSymlink, Linkname: "/etc"},
		"link pointing up": {Name: id + "/l", Typeflag: tar.TypeSymlink, Linkname: "../../x"},
		"hard link":        {Name: id + "/h", Typeflag: tar.TypeLink, Linkname: id + "/x"},
		"device":           {Name: id + "/d", Typeflag: tar.TypeChar},
	}
	for name, h := range tests {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), id+".tar.zst")
			writeTar(t, p, dir, h)
			root := t.TempDir()
			if _, err := Unarchive(context.Background(), p, root); err == nil || !strings.Contains(err.Error(), "refusing") {
				t.Errorf("err %v, want a refusal", err)
			}
			if entries, _ := os.ReadDir(root); len(entries) != 0 {
				t.Errorf("%d entries left in the root", len(entries))
			}
		})
	}
	t.Run("sidecar hash mismatch", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), id+".tar.zst")
		writeTar(t, p, dir)
		os.WriteFile(p+".json", []byte(`{"archive_sha256":"00"}`), 0o644)
		root := t.TempDir()
		if _, err := Unarchive(context.Background(), p, root); err == nil || !strings.Contains(err.Error(), "SHA-256") {
			t.Errorf("err %v", err)
		}
		if entries, _ := os.ReadDir(root); len(entries) != 0 {
			t.Errorf("%d entries left in the root", len(entries))
		}
	})
}

// An archive left in place by an interrupted run is accepted when it holds
// exactly the backup (its missing sidecar is written), refused otherwise.
func TestArchiveResume(t *testing.T) {
	root := t.TempDir()
	src := backuptest.MustWrite(t, root, backuptest.Seed(6), backuptest.Files(10))
	b := listOne(t, src.Path)
	out := t.TempDir()
	side, dst, err := Archive(context.Background(), b, out, ArchiveOptions{Now: archiveNow})
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(dst + ".json")
	side2, _, err := Archive(context.Background(), b, out, ArchiveOptions{Now: archiveNow})
	if err != nil || side2.ArchiveSHA256 != side.ArchiveSHA256 {
		t.Fatalf("resume: %v, %+v", err, side2)
	}
	if _, err := os.Stat(dst + ".json"); err != nil {
		t.Errorf("sidecar not rewritten: %v", err)
	}
	other := backuptest.MustWrite(t, t.TempDir(), backuptest.Seed(7), backuptest.Files(10), backuptest.UDID(b.ID))
	if _, _, err := Archive(context.Background(), listOne(t, other.Path), out, ArchiveOptions{Now: archiveNow}); err == nil || !strings.Contains(err.Error(), "holds something else") {
		t.Errorf("different backup over an existing archive: %v", err)
	}
}

// Archive tells its progress: writing, then reading back, each ending at
// the backup's totals.
func TestArchiveProgress(t *testing.T) {
	root := t.TempDir()
	src := backuptest.MustWrite(t, root, backuptest.Seed(4), backuptest.Files(30))
	b := listOne(t, src.Path)
	last := map[string]ArchiveProgress{}
	var steps []string
	opt := ArchiveOptions{Now: archiveNow, Progress: func(p ArchiveProgress) {
		if len(steps) == 0 || steps[len(steps)-1] != p.Step {
			steps = append(steps, p.Step)
		}
		if prev := last[p.Step]; p.Bytes < prev.Bytes || p.Files < prev.Files {
			t.Errorf("%s went back: %+v after %+v", p.Step, p, prev)
		}
		last[p.Step] = p
	}}
	if _, _, err := Archive(context.Background(), b, t.TempDir(), opt); err != nil {
		t.Fatal(err)
	}
	if strings.Join(steps, ",") != StepWriting+","+StepReadingBack {
		t.Errorf("steps %q", steps)
	}
	for _, s := range []string{StepWriting, StepReadingBack} {
		p := last[s]
		if p.Files != b.Usage.Files || p.TotalFiles != b.Usage.Files || p.Bytes != b.Usage.ApparentBytes || p.TotalBytes != b.Usage.ApparentBytes || p.Files == 0 {
			t.Errorf("%s ended at %+v; usage %+v", s, p, b.Usage)
		}
	}
}

// The temporary archive's name carries the writer's pid and host.
func TestArchiveTempName(t *testing.T) {
	name := filepath.Base(strings.Replace(archiveTempPattern(), "*", "123456", 1))
	pid, host, ok := parseArchiveTemp(name)
	if !ok || pid != os.Getpid() || host != tempHost() {
		t.Errorf("%s: pid %d host %q ok %v", name, pid, host, ok)
	}
	for _, tt := range []struct {
		name string
		pid  int
		host string
		ok   bool
	}{
		{".mbaudit-archive-42@my-mac.local-99.tmp", 42, "my-mac.local", true},
		{".mbaudit-archive-42@my-mac.local-99.tmp.json", 42, "my-mac.local", true},
		{".mbaudit-archive-123456.tmp", 0, "", true},
		{".mbaudit-archive-x@h-1.tmp", 0, "", true},
		{".mbaudit-sidecar-abc.tmp", 0, "", false},
		{"abc.tar.zst", 0, "", false},
	} {
		pid, host, ok := parseArchiveTemp(tt.name)
		if pid != tt.pid || host != tt.host || ok != tt.ok {
			t.Errorf("%s: pid %d host %q ok %v", tt.name, pid, host, ok)
		}
	}
}

// CleanArchiveTemps removes the leftovers of dead writers on this host and
// leaves the rest.
func TestCleanArchiveTemps(t *testing.T) {
	dir := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skip("no true(1)")
	}
	deadPID := dead.ProcessState.Pid()
	host := tempHost()
	files := map[string]bool{ // name: removed
		".mbaudit-archive-" + itoa(deadPID) + "@" + host + "-1.tmp":      true,
		".mbaudit-archive-" + itoa(deadPID) + "@" + host + "-1.tmp.json": true,
		".mbaudit-archive-" + itoa(os.Getpid()) + "@" + host + "-2.tmp":  false, // alive
		".mbaudit-archive-" + itoa(deadPID) + "@other-host-3.tmp":        false, // another host
		".mbaudit-archive-4.tmp": false, // no pid
		"abc.tar.zst":            false,
	}
	for n := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	removed, left, err := CleanArchiveTemps(dir)
	if err != nil {
		t.Fatal(err)
	}
	gone := map[string]bool{}
	for _, r := range removed {
		gone[filepath.Base(r)] = true
	}
	for n, want := range files {
		_, err := os.Stat(filepath.Join(dir, n))
		if want != gone[n] || want != errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: removed %v (reported %v), want %v", n, errors.Is(err, os.ErrNotExist), gone[n], want)
		}
	}
	if len(left) != 2 {
		t.Errorf("left %+v, want the other host's and the one without a pid", left)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
