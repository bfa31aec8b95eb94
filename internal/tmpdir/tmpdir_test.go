package tmpdir

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestPrivate(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	dir, err := Private()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 || filepath.Dir(dir) != tmp ||
		!strings.HasPrefix(filepath.Base(dir), prefix+strconv.Itoa(os.Getpid())+"-") {
		t.Errorf("%s: mode %v", dir, fi.Mode())
	}
}

func TestSweep(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	// A folder of a process that is gone, one of this process, one whose
	// name does not parse, and a stranger's.
	dead := filepath.Join(tmp, prefix+"999999999-x")
	mine := filepath.Join(tmp, prefix+strconv.Itoa(os.Getpid())+"-y")
	odd := filepath.Join(tmp, prefix+"notapid-z")
	other := filepath.Join(tmp, "someone-else")
	for _, d := range []string{dead, mine, odd, other} {
		if err := os.MkdirAll(filepath.Join(d, "sub"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	Sweep()
	for d, want := range map[string]bool{dead: false, mine: true, odd: true, other: true} {
		if _, err := os.Stat(d); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(d), err == nil, want)
		}
	}
}
