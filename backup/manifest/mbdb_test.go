package manifest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

// mbdbIn is a record for the test-side mbdb encoder. A nil *string field is
// written as the null string (0xFFFF).
type mbdbIn struct {
	Domain, Path, Target, Hash, Key *string
	Mode                            uint16
	Inode                           uint64
	UID, GID, MTime, CTime, BTime   uint32
	Size                            uint64
	Class                           uint8
	Props                           [][2]string
}

func sp(s string) *string { return &s }

func putMbdbString(b []byte, s *string) []byte {
	if s == nil {
		return binary.BigEndian.AppendUint16(b, 0xFFFF)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(*s)))
	return append(b, *s...)
}

func encodeMbdb(recs ...mbdbIn) []byte {
	b := []byte("mbdb\x05\x00")
	for _, r := range recs {
		b = appendMbdbRecord(b, r)
	}
	return b
}

func appendMbdbRecord(b []byte, r mbdbIn) []byte {
	for _, s := range []*string{r.Domain, r.Path, r.Target, r.Hash, r.Key} {
		b = putMbdbString(b, s)
	}
	b = binary.BigEndian.AppendUint16(b, r.Mode)
	b = binary.BigEndian.AppendUint64(b, r.Inode)
	for _, v := range []uint32{r.UID, r.GID, r.MTime, r.CTime, r.BTime} {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	b = binary.BigEndian.AppendUint64(b, r.Size)
	b = append(b, r.Class, byte(len(r.Props)))
	for _, p := range r.Props {
		b = putMbdbString(b, sp(p[0]))
		b = putMbdbString(b, sp(p[1]))
	}
	return b
}

// naiveMbdb is a reference parser over a whole byte slice: the records, and
// the offset of the first problem (-1 for none).
func naiveMbdb(b []byte) (recs []MbdbRecord, errOff int64, notMbdb bool) {
	if !bytes.HasPrefix(b, []byte("mbdb\x05\x00")) {
		return nil, -1, true
	}
	off := 6
	need := func(n int) bool { return off+n <= len(b) }
	str := func() ([]byte, bool) {
		if !need(2) {
			return nil, false
		}
		n := int(binary.BigEndian.Uint16(b[off:]))
		off += 2
		if n == 0xFFFF {
			return nil, true
		}
		if !need(n) {
			return nil, false
		}
		off += n
		return b[off-n : off], true
	}
	for off < len(b) {
		var r MbdbRecord
		r.Offset = int64(off)
		var fields [5][]byte
		for i := range fields {
			s, ok := str()
			if !ok {
				return recs, int64(off), false
			}
			fields[i] = s
		}
		r.Domain, r.Path, r.Target = string(fields[0]), string(fields[1]), string(fields[2])
		if len(fields[3]) > 0 {
			r.DataHash = bytes.Clone(fields[3])
		}
		r.HasEncryptionKey = len(fields[4]) > 0
		if len(fields[4]) > 0 {
			r.EncryptionKey = bytes.Clone(fields[4])
		}
		if !need(40) {
			return recs, int64(off), false
		}
		f := b[off:]
		r.Mode = binary.BigEndian.Uint16(f)
		r.Inode = binary.BigEndian.Uint64(f[2:])
		r.UserID, r.GroupID = binary.BigEndian.Uint32(f[10:]), binary.BigEndian.Uint32(f[14:])
		r.LastModified, r.LastStatusChange, r.Birth = binary.BigEndian.Uint32(f[18:]), binary.BigEndian.Uint32(f[22:]), binary.BigEndian.Uint32(f[26:])
		r.Size = binary.BigEndian.Uint64(f[30:])
		r.ProtectionClass, r.PropertyCount = f[38], int(f[39])
		off += 40
		for range 2 * r.PropertyCount {
			if _, ok := str(); !ok {
				return recs, int64(off), false
			}
		}
		recs = append(recs, r)
	}
	return recs, -1, false
}

// scanAll collects copies of every record.
func scanAll(r io.Reader) ([]MbdbRecord, int, error) {
	var out []MbdbRecord
	n, err := ScanMbdb(r, func(rec *MbdbRecord) error {
		c := *rec
		c.DataHash = bytes.Clone(rec.DataHash)
		c.hash = nil
		c.EncryptionKey = bytes.Clone(rec.EncryptionKey)
		c.key = nil
		out = append(out, c)
		return nil
	})
	return out, n, err
}

func sampleMbdb() []mbdbIn {
	hash := string(bytes.Repeat([]byte{0xab}, 20))
	key := string(bytes.Repeat([]byte{0x01}, 44))
	return []mbdbIn{
		{Domain: sp("HomeDomain"), Path: sp(""), Mode: 0x41ed, Inode: 1 << 40, UID: 501, GID: 501, MTime: 1, CTime: 2, BTime: 3},
		{Domain: sp("HomeDomain"), Path: sp("Library/SMS/sms.db"), Hash: &hash, Key: &key, Mode: 0x81a4, Inode: 99,
			UID: 501, GID: 501, Size: 57344, Class: 3, Props: [][2]string{{"com.apple.x", "v"}, {"n", ""}}},
		{Domain: sp("MediaDomain"), Path: sp("Media/link"), Target: sp("/var/mobile/x"), Mode: 0xa1ed},
		{Domain: nil, Path: nil, Hash: sp(""), Key: sp(""), Mode: 0x81a4, Size: 1<<64 - 1},
		{Domain: sp(strings.Repeat("D", 300)), Path: sp(strings.Repeat("p", 65534)), Mode: 0x81a4},
	}
}

func TestScanMbdb(t *testing.T) {
	data := encodeMbdb(sampleMbdb()...)
	want, errOff, _ := naiveMbdb(data)
	if errOff != -1 || len(want) != 5 {
		t.Fatalf("reference parser: %d records, error at %d", len(want), errOff)
	}
	readers := map[string]func() io.Reader{
		"bytes":    func() io.Reader { return bytes.NewReader(data) },
		"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) },
		"data+EOF": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) },
		"half":     func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) },
	}
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			got, n, err := scanAll(mk())
			if err != nil || n != 5 {
				t.Fatalf("n=%d err=%v", n, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %+v\nwant %+v", got[1], want[1])
			}
		})
	}
	got, _, _ := scanAll(bytes.NewReader(data))
	r := got[1]
	if r.Domain != "HomeDomain" || r.Path != "Library/SMS/sms.db" || len(r.DataHash) != 20 || !r.HasEncryptionKey ||
		r.Mode != 0x81a4 || r.Size != 57344 || r.ProtectionClass != 3 || r.PropertyCount != 2 || r.UserID != 501 || r.Inode != 99 {
		t.Errorf("record 1: %+v", r)
	}
	if got[3].Domain != "" || got[3].DataHash != nil || got[3].HasEncryptionKey || got[3].Size != 1<<64-1 {
		t.Errorf("null strings: %+v", got[3])
	}
	if got[2].Target != "/var/mobile/x" || got[0].Offset != 6 {
		t.Errorf("record 2 %+v, record 0 offset %d", got[2], got[0].Offset)
	}
}

func TestScanMbdbEmptyAndHeader(t *testing.T) {
	for _, c := range []struct {
		name string
		data string
		err  error
	}{
		{"empty", "", ErrNotMbdb},
		{"short", "mbd", ErrNotMbdb},
		{"wrong version", "mbdb\x04\x00", ErrNotMbdb},
		{"sqlite", "SQLite format 3\x00", ErrNotMbdb},
		{"header only", "mbdb\x05\x00", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			n, err := ScanMbdb(strings.NewReader(c.data), func(*MbdbRecord) error { t.Fatal("record"); return nil })
			if n != 0 || !errors.Is(err, c.err) || (c.err == nil && err != nil) {
				t.Fatalf("n=%d err=%v, want %v", n, err, c.err)
			}
		})
	}
}

// TestScanMbdbTruncated cuts a file at every byte: records before the cut
// come back, and a cut inside a record is an *MbdbError at the offset the
// reference parser finds.
func TestScanMbdbTruncated(t *testing.T) {
	data := encodeMbdb(sampleMbdb()[:4]...)
	for cut := 6; cut <= len(data); cut++ {
		want, errOff, _ := naiveMbdb(data[:cut])
		got, n, err := scanAll(bytes.NewReader(data[:cut]))
		if n != len(want) || !reflect.DeepEqual(got, want) {
			t.Fatalf("cut %d: %d records, want %d", cut, n, len(want))
		}
		if errOff < 0 {
			if err != nil {
				t.Fatalf("cut %d: %v", cut, err)
			}
			continue
		}
		var me *MbdbError
		if !errors.As(err, &me) || me.Offset != errOff || !errors.Is(err, io.ErrUnexpectedEOF) || me.Record != len(want) {
			t.Fatalf("cut %d: error %v, want one at byte %d", cut, err, errOff)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("at byte %d", errOff)) {
			t.Fatalf("cut %d: message %q lacks the offset", cut, err)
		}
	}
}

func TestScanMbdbHostile(t *testing.T) {
	// A string length that runs past the end, in a tiny file.
	data := append([]byte("mbdb\x05\x00"), 0xFF, 0xFE, 'a', 'b')
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	_, err := ScanMbdb(bytes.NewReader(data), func(*MbdbRecord) error { return nil })
	runtime.ReadMemStats(&ms)
	var me *MbdbError
	if !errors.As(err, &me) || me.Offset != 8 || me.What != "Domain" {
		t.Fatalf("error %v", err)
	}
	// The reader's buffer is 64 KiB; nothing may be sized from the length.
	if got := ms.TotalAlloc - before; got > 256<<10 {
		t.Errorf("allocated %d bytes", got)
	}

	// Garbage after the last record.
	data = append(encodeMbdb(sampleMbdb()[:2]...), "garbage!"...)
	n, err := ScanMbdb(bytes.NewReader(data), func(*MbdbRecord) error { return nil })
	if n != 2 || !errors.As(err, &me) || me.Record != 2 {
		t.Fatalf("garbage tail: n=%d err=%v", n, err)
	}

	// A read error is not disguised as truncation.
	boom := errors.New("boom")
	_, err = ScanMbdb(io.MultiReader(bytes.NewReader(data[:100]), iotest.ErrReader(boom)), func(*MbdbRecord) error { return nil })
	if !errors.Is(err, boom) || errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read error: %v", err)
	}

	// fn's error stops the scan unchanged.
	stop := errors.New("stop")
	n, err = ScanMbdb(bytes.NewReader(data), func(*MbdbRecord) error { return stop })
	if n != 0 || err != stop {
		t.Fatalf("fn error: n=%d err=%v", n, err)
	}
}

// mbdbStream generates a Manifest.mbdb of n records on the fly, so that a
// large file never exists in memory.
type mbdbStream struct {
	n, i int
	buf  []byte
}

func (s *mbdbStream) Read(p []byte) (int, error) {
	for len(s.buf) == 0 {
		if s.i > s.n {
			return 0, io.EOF
		}
		if s.i == 0 {
			s.buf = []byte("mbdb\x05\x00")
		} else {
			s.buf = appendMbdbRecord(s.buf[:0], mbdbIn{Domain: sp("AppDomain-com.example.app"),
				Path: sp(fmt.Sprintf("Library/Caches/file-%08d.dat", s.i)), Hash: sp("01234567890123456789"),
				Key: sp("k"), Mode: 0x81a4, Size: uint64(s.i)})
		}
		s.i++
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

// TestScanMbdbStreaming reads 200,000 records (about 18 MB) and checks that
// the live heap does not grow with them.
func TestScanMbdbStreaming(t *testing.T) {
	const total = 200_000
	var early, late uint64
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	n, err := ScanMbdb(&mbdbStream{n: total}, func(rec *MbdbRecord) error {
		switch rec.Size {
		case 1000:
			early = heap()
		case total:
			late = heap()
		}
		return nil
	})
	if err != nil || n != total {
		t.Fatalf("n=%d err=%v", n, err)
	}
	if late > early+(1<<20) {
		t.Errorf("live heap grew from %d to %d bytes", early, late)
	}
}

func mbdbSeeds() map[string][]byte {
	recs := sampleMbdb()
	full := encodeMbdb(recs[:4]...)
	return map[string][]byte{
		"header-only":  []byte("mbdb\x05\x00"),
		"one-dir":      encodeMbdb(recs[0]),
		"four-records": full,
		"long-path":    encodeMbdb(mbdbIn{Domain: sp("HomeDomain"), Path: sp(strings.Repeat("p/", 200)), Mode: 0x81a4}),
		"truncated":    full[:len(full)-7],
		"bad-magic":    append([]byte("mbdx\x02\x00"), full[6:]...),
		"hostile-len":  append([]byte("mbdb\x05\x00"), 0xFF, 0xFE, 'a'),
		"many-props": encodeMbdb(mbdbIn{Domain: sp("D"), Path: sp("p"), Mode: 0x81a4,
			Props: [][2]string{{"a", "1"}, {"b", "2"}, {"c", "3"}}}),
	}
}

func TestWriteFuzzSeedsMbdb(t *testing.T) {
	if !*updateSeeds {
		t.Skip("run with -update-seeds to rewrite testdata/fuzz/FuzzScanMbdb")
	}
	if err := os.RemoveAll(filepath.Join("testdata", "fuzz", "FuzzScanMbdb")); err != nil {
		t.Fatal(err)
	}
	for name, b := range mbdbSeeds() {
		writeSeed(t, "FuzzScanMbdb", name, b)
	}
}

// FuzzScanMbdb checks ScanMbdb against the reference parser: the same
// records, and an error exactly where the reference finds one.
func FuzzScanMbdb(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		want, errOff, notMbdb := naiveMbdb(data)
		got, n, err := scanAll(iotest.HalfReader(bytes.NewReader(data)))
		switch {
		case notMbdb:
			if !errors.Is(err, ErrNotMbdb) || n != 0 {
				t.Fatalf("bad magic: n=%d err=%v", n, err)
			}
			return
		case errOff < 0:
			if err != nil {
				t.Fatalf("reference reads it; ScanMbdb: %v", err)
			}
		default:
			var me *MbdbError
			if !errors.As(err, &me) || me.Offset != errOff {
				t.Fatalf("reference fails at byte %d; ScanMbdb: %v", errOff, err)
			}
		}
		if n != len(want) || !reflect.DeepEqual(got, want) {
			t.Fatalf("%d records, reference %d", n, len(want))
		}
	})
}

func BenchmarkScanMbdb(b *testing.B) {
	const records = 100_000
	data, err := io.ReadAll(&mbdbStream{n: records})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		n, err := ScanMbdb(bytes.NewReader(data), func(*MbdbRecord) error { return nil })
		if err != nil || n != records {
			b.Fatal(n, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*records), "ns/record")
}
