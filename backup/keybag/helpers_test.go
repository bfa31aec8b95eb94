package keybag

import (
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// This file builds keybags for the tests independently of the code under
// test, apart from Wrap (checked against RFC 3394 in wrap_test.go): the
// derived key comes from the standard library's crypto/pbkdf2.

// tlvs is a keybag under construction.
type tlvs []byte

func (b tlvs) add(tag string, v []byte) tlvs {
	b = append(b, tag...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// testBag is a keybag and what it was built from.
type testBag struct {
	data     []byte
	derived  []byte
	keys     map[uint32][]byte // class keys that Unlock must recover
	classes  []uint32          // every class, in order
	salt     []byte
	dpSalt   []byte
	dpIter   int
	iter     int
	password string
}

// bagClass says how one class of a test keybag is stored.
type bagClass struct {
	class, wrap, ktyp uint32
	raw               []byte // WPKY stored as is (when wrap has no passcode bit)
	pbky              bool
}

// defaultClasses covers every WRAP case Unlock handles.
var defaultClasses = []bagClass{
	{class: 1, wrap: 2}, {class: 2, wrap: 2, ktyp: 1, pbky: true}, {class: 3, wrap: 2},
	{class: 4, wrap: 2}, {class: 5, wrap: 3}, {class: 6, wrap: 2}, {class: 7, wrap: 2},
	{class: 8, wrap: 3}, {class: 9, wrap: 1}, {class: 10, wrap: 0}, {class: 11, wrap: 0},
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// buildBag makes a keybag for password. dpIter 0 makes a legacy keybag
// (no DPWT, DPIC, DPSL).
func buildBag(tb testing.TB, seed uint64, password string, dpIter, iter int, classes []bagClass) *testBag {
	tb.Helper()
	r := rand.New(rand.NewPCG(seed, 0x6b6579626167))
	t := &testBag{keys: map[uint32][]byte{}, salt: randBytes(r, 20), dpIter: dpIter, iter: iter, password: password}
	pw := password
	if dpIter > 0 {
		t.dpSalt = randBytes(r, 20)
		k, err := pbkdf2.Key(sha256.New, password, t.dpSalt, dpIter, 32)
		if err != nil {
			tb.Fatal(err)
		}
		pw = string(k)
	}
	var err error
	t.derived, err = pbkdf2.Key(sha1.New, pw, t.salt, iter, 32)
	if err != nil {
		tb.Fatal(err)
	}
	var b tlvs
	vers := uint32(3)
	if dpIter > 0 {
		vers = 4
	}
	b = b.add("VERS", u32(vers)).add("TYPE", u32(1)).add("UUID", randBytes(r, 16)).
		add("HMCK", randBytes(r, 40)).add("WRAP", u32(0)).add("SALT", t.salt).add("ITER", u32(uint32(iter)))
	if dpIter > 0 {
		b = b.add("DPWT", u32(1)).add("DPIC", u32(uint32(dpIter))).add("DPSL", t.dpSalt)
	}
	for _, c := range classes {
		t.classes = append(t.classes, c.class)
		b = b.add("UUID", randBytes(r, 16)).add("CLAS", u32(c.class)).add("WRAP", u32(c.wrap)).add("KTYP", u32(c.ktyp))
		var wpky []byte
		switch {
		case c.wrap&WrapPasscode != 0:
			key := randBytes(r, 32)
			wpky, err = Wrap(t.derived, key)
			if err != nil {
				tb.Fatal(err)
			}
			if c.wrap&WrapDevice == 0 {
				t.keys[c.class] = key
			}
		case c.raw != nil:
			wpky = c.raw
		case c.wrap == 0 && c.class == 10:
			wpky = randBytes(r, 32) // stored in the clear
			t.keys[c.class] = wpky
		default:
			wpky = randBytes(r, 40)
		}
		b = b.add("WPKY", wpky)
		if c.pbky {
			b = b.add("PBKY", randBytes(r, 32))
		}
	}
	t.data = b
	return t
}

// wrapFor returns a fresh key and its 44-byte "class + wrapped" form.
func (t *testBag) wrapFor(tb testing.TB, r *rand.Rand, class uint32) (key, wrapped44 []byte) {
	tb.Helper()
	key = randBytes(r, 32)
	w, err := Wrap(t.keys[class], key)
	if err != nil {
		tb.Fatal(err)
	}
	return key, append(binary.LittleEndian.AppendUint32(nil, class), w...)
}
