package backuptest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// scratch holds every folder the tests write. It is removed once, at the
// end: ext4 creates files slowly for a while after many deletions (it skips
// recently freed inodes), so deleting after each test would slow the next.
var scratch string

func TestMain(m *testing.M) {
	var err error
	scratch, err = os.MkdirTemp("", "backuptest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(scratch)
	os.Exit(code)
}

// tempDir returns a new empty folder for t, removed when the package's tests end.
func tempDir(t testing.TB) string {
	t.Helper()
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	dir, err := os.MkdirTemp(scratch, name+"-")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func newTestRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed)) }
