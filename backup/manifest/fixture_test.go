package manifest

import (
	"database/sql"
	"flag"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"
)

// updateSeeds rewrites the committed fuzz seed corpora under testdata/fuzz
// from the test-side encoders: go test -run Seeds -update-seeds.
var updateSeeds = flag.Bool("update-seeds", false, "rewrite testdata/fuzz seed corpora")

// realDir is the shared real-data folder, beside the checkout.
const realDir = "../../../shared/fixtures/real"

// realManifest returns the path of the real iOS 14 Manifest.db, or skips.
func realManifest(tb testing.TB) string {
	tb.Helper()
	p := filepath.Join(realDir, "mvt-ios14/1cb128eafa77c5be74283e9a3a2130af36a3c059/Manifest.db")
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("real fixture not available (%v): clone beside ../shared to run this test", err)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		tb.Fatal(err)
	}
	return abs
}

// copyFile copies src to dst (for working on temporary copies).
func copyFile(tb testing.TB, src, dst string) {
	tb.Helper()
	in, err := os.Open(src)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
}

// realRow is one row of the real fixture, read through database/sql so the
// tests of ReadMBFile do not depend on this package's Scan.
type realRow struct {
	fileID, domain, path string
	flags                int64
	file                 []byte
}

func realRows(tb testing.TB) []realRow {
	tb.Helper()
	path := realManifest(tb)
	u := url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: "mode=ro&immutable=1"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT fileID, domain, relativePath, flags, file FROM Files")
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []realRow
	for rows.Next() {
		var r realRow
		if err := rows.Scan(&r.fileID, &r.domain, &r.path, &r.flags, &r.file); err != nil {
			tb.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// writeSeed writes one committed fuzz seed in the go test corpus format.
func writeSeed(tb testing.TB, fuzzName, name string, args ...[]byte) {
	tb.Helper()
	dir := filepath.Join("testdata", "fuzz", fuzzName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	s := "go test fuzz v1\n"
	for _, a := range args {
		s += "[]byte(" + quoteBytes(a) + ")\n"
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
		tb.Fatal(err)
	}
}

func quoteBytes(b []byte) string {
	const hex = "0123456789abcdef"
	out := []byte{'"'}
	for _, c := range b {
		switch {
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c >= 0x20 && c < 0x7f:
			out = append(out, c)
		default:
			out = append(out, '\\', 'x', hex[c>>4], hex[c&15])
		}
	}
	return string(append(out, '"'))
}
