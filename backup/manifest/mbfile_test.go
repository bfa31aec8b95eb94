package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var key44 = bytes.Repeat([]byte{3, 0, 0, 0, 0xce, 0x40}, 8)[:44]

// builtCases are MBFile archives made with the test encoder, with the
// FileInfo ReadMBFile must return.
func builtCases() []struct {
	name   string
	blob   []byte
	want   FileInfo
	errSub string
	// noHowett: howett.net/plist rejects it (it refuses 8-byte references).
	noHowett bool
} {
	file := mbRecord{RelativePath: "Library/SMS/sms.db", Size: 57344, Mode: 0o100644, ProtectionClass: 3,
		Inode: 55569, EncryptionKey: key44, Digest: bytes.Repeat([]byte{0xab}, 20)}
	fileWant := FileInfo{Size: 57344, HasSize: true, Mode: 0o100644, HasMode: true, HasEncryptionKey: true, EncryptionKey: key44, ProtectionClass: 3}
	dir := mbRecord{RelativePath: "Library", Mode: 0o40755}
	dirWant := FileInfo{HasSize: true, Mode: 0o40755, HasMode: true}
	link := mbRecord{RelativePath: "Library/link", Mode: 0o120755, Target: "/var/mobile/Containers/Data/x"}
	linkWant := FileInfo{HasSize: true, Mode: 0o120755, HasMode: true, HasTarget: true}

	with := func(r mbRecord, f func(*mbRecord)) mbRecord { f(&r); return r }
	wantWith := func(w FileInfo, f func(*FileInfo)) FileInfo { f(&w); return w }

	type tc = struct {
		name     string
		blob     []byte
		want     FileInfo
		errSub   string
		noHowett bool
	}
	cases := []tc{
		{"file", archive(file, bpLayout{}), fileWant, "", false},
		{"directory", archive(dir, bpLayout{}), dirWant, "", false},
		{"symlink", archive(link, bpLayout{}), linkWant, "", false},
		{"raw data key", archive(with(file, func(r *mbRecord) { r.RawKey = true }), bpLayout{}), fileWant, "", false},
		{"empty key", archive(with(file, func(r *mbRecord) { r.EncryptionKey = []byte{} }), bpLayout{}),
			wantWith(fileWant, func(w *FileInfo) { w.HasEncryptionKey, w.EncryptionKey = false, nil }), "", false},
		{"missing Size", archive(with(file, func(r *mbRecord) { r.NoSize = true }), bpLayout{}),
			wantWith(fileWant, func(w *FileInfo) { w.Size, w.HasSize = 0, false }), "", false},
		{"missing Mode", archive(with(dir, func(r *mbRecord) { r.NoMode = true }), bpLayout{}),
			wantWith(dirWant, func(w *FileInfo) { w.Mode, w.HasMode = 0, false }), "", false},
		{"root 5", archive(with(file, func(r *mbRecord) { r.RootIndex = 5 }), bpLayout{}), fileWant, "", false},
		{"root 300 two-byte refs", archive(with(link, func(r *mbRecord) { r.RootIndex = 300 }), bpLayout{}), linkWant, "", false},
		{"two-byte refs", archive(file, bpLayout{refSize: 2}), fileWant, "", false},
		{"eight-byte refs and offsets", archive(file, bpLayout{refSize: 8, offSize: 8}), fileWant, "", true},
		{"four-byte refs, eight-byte offsets", archive(file, bpLayout{refSize: 4, offSize: 8}), fileWant, "", false},
		{"three-byte offsets", archive(file, bpLayout{offSize: 3}), fileWant, "", false},
		{"shuffled objects", archive(with(file, func(r *mbRecord) { r.RootIndex = 3 }), bpLayout{shuffle: true, seed: 7}), fileWant, "", false},
		{"UTF-16 keys", archive(with(link, func(r *mbRecord) { r.UTF16Keys = true }), bpLayout{}), linkWant, "", false},
		{"large size", archive(with(file, func(r *mbRecord) { r.Size = 5 << 32 }), bpLayout{}),
			wantWith(fileWant, func(w *FileInfo) { w.Size = 5 << 32 }), "", false},
		{"negative size", archive(with(file, func(r *mbRecord) { r.Size = -2 }), bpLayout{}),
			wantWith(fileWant, func(w *FileInfo) { w.Size = -2 }), "", false},
	}
	for _, width := range []int{1, 2, 4, 8, 16} {
		r := with(file, func(r *mbRecord) { r.IntWidth = width; r.Size = 200; r.Mode = 0o177; r.ProtectionClass = 4 })
		if width > 1 {
			r.Size = 1<<(8*min(width, 8)-1) - 1
			r.Mode = 0o100600
		}
		cases = append(cases, tc{fmt.Sprintf("%d-byte integers", width), archive(r, bpLayout{}),
			wantWith(fileWant, func(w *FileInfo) { w.Size, w.Mode, w.ProtectionClass = r.Size, r.Mode, 4 }), "", false})
	}
	// Broken ones.
	good := archive(file, bpLayout{})
	cases = append(cases,
		tc{"empty", nil, FileInfo{}, "too short", false},
		tc{"xml", []byte(`<?xml version="1.0"?><plist version="1.0"><dict></dict></plist>`), FileInfo{}, "not a bplist00", false},
		tc{"bplist01", append([]byte("bplist01"), good[8:]...), FileInfo{}, "not a bplist00", false},
		tc{"truncated", good[:len(good)-1], FileInfo{}, "malformed MBFile", false},
		tc{"no trailer", good[:len(good)-32], FileInfo{}, "malformed MBFile", false},
	)
	return cases
}

func TestReadMBFileBuilt(t *testing.T) {
	for _, c := range builtCases() {
		t.Run(c.name, func(t *testing.T) {
			var fi FileInfo
			fi.Size = 99 // must be reset
			err := ReadMBFile(c.blob, &fi)
			want, valid := howettMBFile(c.blob)
			if c.errSub != "" {
				if err == nil {
					t.Fatalf("no error; got %+v", fi)
				}
				if !errors.Is(err, ErrMalformedMBFile) || !strings.Contains(err.Error(), c.errSub) {
					t.Fatalf("error %q, want one containing %q matching ErrMalformedMBFile", err, c.errSub)
				}
				if valid {
					t.Fatalf("howett decodes it as %+v", want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !sameFileInfo(fi, c.want) {
				t.Fatalf("got  %+v\nwant %+v", fi, c.want)
			}
			if c.noHowett {
				if valid {
					t.Fatal("howett now decodes it: drop noHowett")
				}
				return
			}
			if !valid {
				t.Fatal("howett does not decode the test archive")
			}
			if !sameFileInfo(want, fi) {
				t.Fatalf("howett %+v\nours   %+v", want, fi)
			}
		})
	}
}

// TestReadMBFileMalformed builds archives that break one rule each.
func TestReadMBFileMalformed(t *testing.T) {
	rec := mbRecord{RelativePath: "a", Size: 1, Mode: 0o100644, Target: "t", EncryptionKey: key44}
	cases := []struct {
		name   string
		build  func() []byte
		errSub string
	}{
		{"top is an array", func() []byte {
			w := newBPWriter()
			return w.encode(w.add(bpArray{w.str("x")}), bpLayout{})
		}, "top object is not a dictionary"},
		{"no $objects", func() []byte {
			w := newBPWriter()
			return w.encode(w.dict("$top", w.dict("root", w.add(bpUID{v: 0}))), bpLayout{})
		}, "no $top or $objects"},
		{"root is an integer", func() []byte {
			w := newBPWriter()
			return w.encode(w.dict("$top", w.dict("root", w.add(bpInt{v: 1})), "$objects", w.add(bpArray{w.str("$null")})), bpLayout{})
		}, "expected a UID"},
		{"root beyond $objects", func() []byte {
			w := newBPWriter()
			return w.encode(w.dict("$top", w.dict("root", w.add(bpUID{v: 1})), "$objects", w.add(bpArray{w.str("$null")})), bpLayout{})
		}, "beyond $objects"},
		{"root is a string", func() []byte {
			w := newBPWriter()
			return w.encode(w.dict("$top", w.dict("root", w.add(bpUID{v: 0})), "$objects", w.add(bpArray{w.str("$null")})), bpLayout{})
		}, "not a dictionary"},
		{"root is the archive itself", func() []byte {
			w := newBPWriter()
			// Object 0 is the archive; $objects[0] refers back to it.
			w.add(nil)
			objs := w.add(bpArray{0})
			top := w.dict("root", w.add(bpUID{v: 0}))
			w.objs[0] = bpDict{keys: []int{w.str("$top"), w.str("$objects"), w.str("Size")}, vals: []int{top, objs, w.add(bpInt{v: 3})}}
			return w.encode(0, bpLayout{})
		}, "refers back"},
		{"Size is a string", func() []byte { return patchRecord(rec, "Size", func(w *bpWriter) int { return w.str("12") }) }, "Size is not an integer"},
		{"Mode is a UID", func() []byte { return patchRecord(rec, "Mode", func(w *bpWriter) int { return w.add(bpUID{v: 0}) }) }, "Mode is not an integer"},
		{"32-byte integer", func() []byte {
			return patchRecord(rec, "ProtectionClass", func(w *bpWriter) int { return w.add(bpRaw(append([]byte{0x15}, make([]byte, 32)...))) })
		}, "bad integer size"},
		{"Target is inline", func() []byte { return patchRecord(rec, "Target", func(w *bpWriter) int { return w.str("/x") }) }, "expected a UID"},
		{"Target UID out of range", func() []byte {
			return patchRecord(rec, "Target", func(w *bpWriter) int { return w.add(bpUID{v: 999}) })
		}, "beyond $objects"},
		{"huge string count", func() []byte {
			return patchRecord(rec, "Size", func(w *bpWriter) int {
				return w.add(bpRaw([]byte{0x5F, 0x13, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}))
			})
		}, "Size is not an integer"},
		{"huge dictionary", func() []byte {
			w := newBPWriter()
			w.add(bpRaw([]byte{0xDF, 0x13, 0x40, 0, 0, 0, 0, 0, 0, 0}))
			return w.encode(0, bpLayout{})
		}, "runs into the offset table"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			blob := c.build()
			var fi FileInfo
			err := ReadMBFile(blob, &fi)
			if err == nil || !strings.Contains(err.Error(), c.errSub) || !errors.Is(err, ErrMalformedMBFile) {
				t.Fatalf("error %v, want %q", err, c.errSub)
			}
			if _, valid := howettMBFile(blob); valid {
				t.Fatal("howett decodes it as a valid MBFile")
			}
		})
	}
}

// patchRecord archives rec with the value of key replaced by the object
// that f adds.
func patchRecord(rec mbRecord, key string, f func(w *bpWriter) int) []byte {
	return archiveHook(rec, bpLayout{}, func(w *bpWriter, d *bpDict) {
		for i, k := range d.keys {
			if s, ok := w.objs[k].(bpASCII); ok && string(s) == key {
				d.vals[i] = f(w)
			}
		}
	})
}

// TestReadMBFileMutations flips and truncates a real-shaped archive at every
// byte: no panic, and agreement with howett wherever it decodes.
func TestReadMBFileMutations(t *testing.T) {
	base := archive(mbRecord{RelativePath: "Media/PhotoData/x", Size: 123456, Mode: 0o100644, ProtectionClass: 3,
		EncryptionKey: key44, Target: "z"}, bpLayout{})
	check := func(blob []byte) {
		t.Helper()
		var fi FileInfo
		err := ReadMBFile(blob, &fi)
		want, valid := howettMBFile(blob)
		if valid && (err != nil || !sameFileInfo(fi, want)) {
			t.Fatalf("blob %x:\nhowett %+v\nours   %+v, %v", blob, want, fi, err)
		}
	}
	for n := range len(base) {
		check(base[:n])
	}
	mut := make([]byte, len(base))
	for i := range base {
		for _, x := range []byte{0x01, 0x0f, 0x10, 0x80, 0xff} {
			copy(mut, base)
			mut[i] ^= x
			check(mut)
		}
	}
}

func TestReadMBFileReal(t *testing.T) {
	rows := realRows(t)
	if len(rows) != 3721 {
		t.Fatalf("%d rows, want 3721", len(rows))
	}
	var withKey, withTarget int
	for _, r := range rows {
		var fi FileInfo
		if err := ReadMBFile(r.file, &fi); err != nil {
			t.Fatalf("%s: %v", r.fileID, err)
		}
		want, valid := howettMBFile(r.file)
		if !valid {
			t.Fatalf("%s: howett does not see a valid MBFile", r.fileID)
		}
		if !sameFileInfo(fi, want) {
			t.Fatalf("%s:\nhowett %+v\nours   %+v", r.fileID, want, fi)
		}
		if !fi.HasSize || !fi.HasMode {
			t.Errorf("%s: no Size or Mode", r.fileID)
		}
		// The Mode's file type agrees with flags (backup-format.md 5.2).
		if typ := map[int64]int64{1: 0o100000, 2: 0o040000, 4: 0o120000}[r.flags]; fi.Mode&0o170000 != typ {
			t.Errorf("%s: flags %d, mode %o", r.fileID, r.flags, fi.Mode)
		}
		if fi.HasEncryptionKey {
			withKey++
		}
		if fi.HasTarget {
			withTarget++
		}
	}
	if withKey != 1089 || withTarget != 14 {
		t.Errorf("%d rows with a key, %d with a target; want 1089 and 14", withKey, withTarget)
	}
}

func TestReadMBFileAllocs(t *testing.T) {
	blobs := [][]byte{
		archive(mbRecord{RelativePath: "a/b", Size: 10, Mode: 0o100644, EncryptionKey: key44}, bpLayout{}),
		archive(mbRecord{RelativePath: "a/b", Mode: 0o120755, Target: "/x", RootIndex: 4}, bpLayout{refSize: 2}),
		archive(mbRecord{RelativePath: "a/b", Mode: 0o40755, UTF16Keys: true}, bpLayout{}),
	}
	for i, b := range blobs {
		var fi FileInfo
		if allocs := testing.AllocsPerRun(100, func() {
			if err := ReadMBFile(b, &fi); err != nil {
				t.Fatal(err)
			}
		}); allocs != 0 {
			t.Errorf("blob %d: %v allocations a call", i, allocs)
		}
	}
}

// seedBlobs are the generated seeds committed under
// testdata/fuzz/FuzzReadMBFile.
func seedBlobs() map[string][]byte {
	seeds := map[string][]byte{}
	for _, c := range builtCases() {
		name := strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
				return r
			}
			return '-'
		}, c.name)
		seeds["built-"+name] = c.blob
	}
	w := newBPWriter()
	w.add(bpRaw([]byte{0xDF, 0x13, 0x40, 0, 0, 0, 0, 0, 0, 0}))
	seeds["huge-dict"] = w.encode(0, bpLayout{})
	return seeds
}

func TestWriteFuzzSeedsMBFile(t *testing.T) {
	if !*updateSeeds {
		t.Skip("run with -update-seeds to rewrite testdata/fuzz/FuzzReadMBFile")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzReadMBFile")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	for name, b := range seedBlobs() {
		writeSeed(t, "FuzzReadMBFile", name, b)
	}
}

func FuzzReadMBFile(f *testing.F) {
	if _, err := os.Stat(realDir); err == nil {
		for _, r := range realRows(f) {
			f.Add(r.file)
		}
	}
	f.Fuzz(func(t *testing.T, blob []byte) {
		var fi FileInfo
		err := ReadMBFile(blob, &fi)
		if err != nil && !errors.Is(err, ErrMalformedMBFile) {
			t.Fatalf("error %v does not match ErrMalformedMBFile", err)
		}
		want, valid := howettMBFile(blob)
		if !valid {
			return
		}
		if err != nil {
			t.Fatalf("howett decodes %+v; ReadMBFile: %v", want, err)
		}
		if !sameFileInfo(fi, want) {
			t.Fatalf("howett %+v\nours   %+v", want, fi)
		}
	})
}

func BenchmarkReadMBFile(b *testing.B) {
	run := func(b *testing.B, blobs [][]byte) {
		var fi FileInfo
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := ReadMBFile(blobs[i%len(blobs)], &fi); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/row")
	}
	b.Run("built", func(b *testing.B) {
		run(b, [][]byte{
			archive(mbRecord{RelativePath: "Library/SMS/sms.db", Size: 57344, Mode: 0o100644, ProtectionClass: 3,
				EncryptionKey: key44, Digest: make([]byte, 20)}, bpLayout{}),
			archive(mbRecord{RelativePath: "Library/Caches", Mode: 0o40755}, bpLayout{}),
		})
	})
	b.Run("real", func(b *testing.B) {
		var blobs [][]byte
		for _, r := range realRows(b) {
			blobs = append(blobs, r.file)
		}
		run(b, blobs)
	})
}

func BenchmarkHowettMBFile(b *testing.B) {
	blob := archive(mbRecord{RelativePath: "Library/SMS/sms.db", Size: 57344, Mode: 0o100644, ProtectionClass: 3,
		EncryptionKey: key44, Digest: make([]byte, 20)}, bpLayout{})
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := howettMBFile(blob); !ok {
			b.Fatal("not valid")
		}
	}
}

// sameFileInfo compares two FileInfos field by field, the key by content.
func sameFileInfo(a, b FileInfo) bool {
	ka, kb := a.EncryptionKey, b.EncryptionKey
	a.EncryptionKey, b.EncryptionKey = nil, nil
	return reflect.DeepEqual(a, b) && bytes.Equal(ka, kb)
}
