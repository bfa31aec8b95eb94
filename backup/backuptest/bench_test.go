package backuptest

import "testing"

// Benchmarks write real folders: run them by hand, for example
//
//	go test -run X -bench Write100k -benchtime 1x ./backup/backuptest/
//
// They skip when the temporary folder's volume is short of space.

func benchmarkWrite(b *testing.B, files int, needBytes uint64) {
	dir := b.TempDir()
	if free, err := freeBytes(dir); err == nil && free < needBytes {
		b.Skipf("only %d MB free in %s, need %d MB", free>>20, dir, needBytes>>20)
	}
	var last *Backup
	for i := 0; b.Loop(); i++ {
		var err error
		last, err = Write(dir, Seed(int64(i+1)), Files(files))
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(files)*float64(b.N)/b.Elapsed().Seconds(), "files/s")
	b.ReportMetric(float64(last.Rows), "rows")
	b.ReportMetric(float64(last.BlobBytes)/(1<<20), "blobMB")
}

func BenchmarkWrite100k(b *testing.B) { benchmarkWrite(b, 100_000, 2<<30) }

// BenchmarkWrite500k is the largest backup the project tests with.
func BenchmarkWrite500k(b *testing.B) { benchmarkWrite(b, 500_000, 5<<30) }
