package manifest

import (
	"context"
	"database/sql"
	"path/filepath"
	"syscall"
	"testing"
)

const benchRows = 200_000

// BenchmarkScan reads a generated 200,000-row Manifest.db and reads each
// row's MBFile, through Scan and, for comparison, through database/sql.
func BenchmarkScan(b *testing.B) {
	dir := b.TempDir()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err == nil && st.Bavail*uint64(st.Bsize) < 1<<30 {
		b.Skip("less than 1 GB free for the benchmark database")
	}
	path := filepath.Join(dir, "Manifest.db")
	var blobBytes int
	writeDB(b, path, filesSchema, func(tx *sql.Tx) {
		stmt, err := tx.Prepare("INSERT INTO Files VALUES (?, ?, ?, ?, ?)")
		if err != nil {
			b.Fatal(err)
		}
		defer stmt.Close()
		for i := range benchRows {
			id, d, p, f, blob := fileRow(i)
			blobBytes += len(blob)
			if _, err := stmt.Exec(id, d, p, f, blob); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Logf("%d rows, MBFile blobs of %d bytes on average", benchRows, blobBytes/benchRows)
	db := mustOpen(b, path)
	report := func(b *testing.B) {
		perScan := float64(b.Elapsed().Seconds()) / float64(b.N)
		b.ReportMetric(benchRows/perScan, "rows/s")
		b.ReportMetric(perScan*1e9/benchRows, "ns/row")
	}

	b.Run("Scan+ReadMBFile", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var n int
			var fi FileInfo
			err := db.Scan(context.Background(), func(r *Row) error {
				n++
				return ReadMBFile(r.File, &fi)
			})
			if err != nil || n != benchRows {
				b.Fatal(n, err)
			}
		}
		report(b)
	})

	b.Run("Scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var n int
			if err := db.Scan(context.Background(), func(r *Row) error { n++; return nil }); err != nil || n != benchRows {
				b.Fatal(n, err)
			}
		}
		report(b)
	})

	b.Run("database/sql+ReadMBFile", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rows, err := db.sql.Query("SELECT fileID, domain, relativePath, flags, file FROM Files")
			if err != nil {
				b.Fatal(err)
			}
			var (
				id, domain, rel, file sql.RawBytes
				flags                 sql.NullInt64
				fi                    FileInfo
				n                     int
			)
			for rows.Next() {
				if err := rows.Scan(&id, &domain, &rel, &flags, &file); err != nil {
					b.Fatal(err)
				}
				if err := ReadMBFile(file, &fi); err != nil {
					b.Fatal(err)
				}
				n++
			}
			if err := rows.Err(); err != nil || n != benchRows {
				b.Fatal(n, err)
			}
			rows.Close()
		}
		report(b)
	})
}
