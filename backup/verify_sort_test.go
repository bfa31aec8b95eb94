package backup

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"slices"
	"testing"
)

// randomListed returns n entries with random fileIDs whose first byte is
// prefix.
func randomListed(n int, prefix byte) []listed {
	out := make([]listed, n)
	for i := range out {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(i))
		out[i].id = sha1.Sum(b[:])
		out[i].id[0] = prefix
		out[i].size = int64(i)
	}
	return out
}

func bytesOrder(a, b listed) int { return bytes.Compare(a.id[:], b.id[:]) }

func TestCmpID(t *testing.T) {
	s := randomListed(3000, 0)
	for i := range s {
		s[i].id[0] = byte(i)
		if i%7 == 0 && i > 0 { // equal but for one byte, anywhere
			s[i].id = s[i-1].id
			s[i].id[i%20] ^= byte(i)
		}
	}
	for i := 1; i < len(s); i++ {
		a, b := &s[i-1].id, &s[i].id
		if cmpID(a, b) != bytes.Compare(a[:], b[:]) || cmpID(b, a) != bytes.Compare(b[:], a[:]) || cmpID(a, a) != 0 {
			t.Fatalf("cmpID(%x, %x) disagrees with bytes.Compare", a, b)
		}
	}
}

func TestSortByID(t *testing.T) {
	var tmp []listed
	for _, n := range []int{0, 1, 5, 255, 256, 2000, 20000} {
		s := randomListed(n, 7)
		for i := range s {
			if i%5 == 0 { // crowd one second byte: a long run to finish
				s[i].id[1] = 3
			}
		}
		want := slices.Clone(s)
		slices.SortFunc(want, bytesOrder)
		sortByID(s, &tmp)
		if !slices.Equal(s, want) {
			t.Fatalf("%d entries: not sorted as bytes.Compare sorts", n)
		}
	}
	// Entries of several prefixes (never the case in a folder) still sort.
	s := randomListed(1000, 7)
	s[500].id[0] = 9
	want := slices.Clone(s)
	slices.SortFunc(want, bytesOrder)
	sortByID(s, &tmp)
	if !slices.Equal(s, want) {
		t.Fatal("mixed prefixes: not sorted")
	}
}

func TestListedChunks(t *testing.T) {
	var c listedChunks
	s := randomListed(5000, 1)
	for _, l := range s {
		c.add(l)
	}
	var got []listed
	for _, ch := range c.chunks {
		got = append(got, ch...)
	}
	if c.n != len(s) || !slices.Equal(got, s) {
		t.Fatalf("%d entries in chunks, want %d in order", c.n, len(s))
	}
}

func BenchmarkSortByID(b *testing.B) {
	src := randomListed(2000, 7)
	s := make([]listed, len(src))
	var tmp []listed
	for b.Loop() {
		copy(s, src)
		sortByID(s, &tmp)
	}
}
