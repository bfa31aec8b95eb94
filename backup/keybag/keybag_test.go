package keybag

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestParse(t *testing.T) {
	bag := buildBag(t, 1, "pw", 100, 10, defaultClasses)
	kb, err := Parse(bag.data)
	if err != nil {
		t.Fatal(err)
	}
	if kb.Version != 4 || kb.Type != 1 || len(kb.UUID) != 16 || len(kb.HMCK) != 40 || kb.Wrap != 0 {
		t.Errorf("header %+v", kb)
	}
	if !kb.HasDP || kb.DPIter != 100 || kb.DPWrap != 1 || !bytes.Equal(kb.DPSalt, bag.dpSalt) ||
		kb.Iter != 10 || !bytes.Equal(kb.Salt, bag.salt) {
		t.Errorf("derivation parameters %+v", kb)
	}
	if len(kb.Classes) != len(defaultClasses) {
		t.Fatalf("%d classes", len(kb.Classes))
	}
	for i, c := range kb.Classes {
		d := defaultClasses[i]
		if c.Class != d.class || c.Wrap != d.wrap || c.KeyType != d.ktyp || len(c.UUID) != 16 ||
			(c.PublicKey != nil) != d.pbky || len(c.WrappedKey) == 0 {
			t.Errorf("class %d: %+v", i, c)
		}
	}
	if kb.Class(2) == nil || len(kb.Class(2).PublicKey) != 32 || kb.Class(12) != nil {
		t.Error("Class lookup")
	}
	if bytes.Equal(kb.Classes[0].UUID, kb.UUID) {
		t.Error("class UUID is the keybag's")
	}
	// Parse copies: scribbling on the input changes nothing.
	salt := bytes.Clone(kb.Salt)
	clear(bag.data)
	if !bytes.Equal(kb.Salt, salt) {
		t.Error("Parse kept a reference to its input")
	}

	legacy := buildBag(t, 2, "pw", 0, 10, defaultClasses)
	kb, err = Parse(legacy.data)
	if err != nil {
		t.Fatal(err)
	}
	if kb.HasDP || kb.Version != 3 || kb.DPSalt != nil {
		t.Errorf("legacy %+v", kb)
	}
	if dp, it := kb.Iterations(); dp != 0 || it != 10 {
		t.Errorf("legacy Iterations() = %d, %d", dp, it)
	}
}

func TestParseUnknownTags(t *testing.T) {
	bag := buildBag(t, 1, "pw", 100, 10, defaultClasses[:2])
	data := append(tlvs(nil).add("XTRA", []byte("header extra")), bag.data...)
	data = tlvs(data).add("SIGN", make([]byte, 20))
	kb, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(kb.Classes) != 2 {
		t.Errorf("%d classes", len(kb.Classes))
	}
}

// header returns the records of a valid header without its class groups.
func header(dp bool) tlvs {
	b := tlvs(nil).add("VERS", u32(4)).add("TYPE", u32(1)).add("UUID", make([]byte, 16)).
		add("WRAP", u32(0)).add("SALT", []byte("salt")).add("ITER", u32(10))
	if dp {
		b = b.add("DPWT", u32(1)).add("DPIC", u32(100)).add("DPSL", []byte("dpsalt"))
	}
	return b
}

func group(b tlvs, class uint32) tlvs {
	return b.add("UUID", make([]byte, 16)).add("CLAS", u32(class)).add("WRAP", u32(2)).
		add("KTYP", u32(0)).add("WPKY", make([]byte, 40))
}

func TestParseErrors(t *testing.T) {
	good := group(group(header(true), 1), 2)
	if _, err := Parse(good); err != nil {
		t.Fatalf("base case: %v", err)
	}
	cases := map[string][]byte{
		"empty":               nil,
		"short record header": append(bytes.Clone(good), "WPKY"...),
		"value past the end":  good[:len(good)-1],
		"length past the end": binary.BigEndian.AppendUint32(append(bytes.Clone(good), "WPKY"...), 0xffffffff),
		"no SALT": group(tlvs(nil).add("VERS", u32(4)).add("UUID", make([]byte, 16)).
			add("ITER", u32(10)), 1),
		"no ITER":           group(tlvs(nil).add("UUID", make([]byte, 16)).add("SALT", []byte("s")), 1),
		"ITER 0":            group(tlvs(nil).add("UUID", make([]byte, 16)).add("SALT", []byte("s")).add("ITER", u32(0)), 1),
		"ITER 3 bytes":      group(tlvs(nil).add("UUID", make([]byte, 16)).add("SALT", []byte("s")).add("ITER", []byte{0, 0, 10}), 1),
		"ITER 8 bytes":      group(tlvs(nil).add("UUID", make([]byte, 16)).add("SALT", []byte("s")).add("ITER", make([]byte, 8)), 1),
		"ITER huge":         group(tlvs(nil).add("UUID", make([]byte, 16)).add("SALT", []byte("s")).add("ITER", u32(1<<31)), 1),
		"empty SALT":        group(tlvs(nil).add("UUID", make([]byte, 16)).add("SALT", nil).add("ITER", u32(1)), 1),
		"VERS 5 bytes":      group(append(tlvs(nil).add("VERS", make([]byte, 5)), header(false)[12:]...), 1),
		"two SALTs":         group(header(false).add("SALT", []byte("again")), 1),
		"SALT after class":  group(header(false), 1).add("SALT", []byte("again")),
		"two WRAPs":         group(header(false).add("WRAP", u32(0)), 1),
		"DPIC without DPSL": group(header(false).add("DPIC", u32(5)), 1),
		"DPSL without DPIC": group(header(false).add("DPSL", []byte("x")), 1),
		"DPIC 0":            group(header(false).add("DPIC", u32(0)).add("DPSL", []byte("x")), 1),
		"empty DPSL":        group(header(false).add("DPIC", u32(5)).add("DPSL", nil), 1),
		"no class group":    header(true),
		"duplicate class":   group(group(header(true), 3), 3),
		"CLAS in header":    group(header(true).add("CLAS", u32(1)), 1),
		"no UUID before class": header(true)[:0:0].add("SALT", []byte("s")).add("ITER", u32(1)).
			add("UUID", make([]byte, 16)).add("CLAS", u32(1)).add("WRAP", u32(2)).add("WPKY", make([]byte, 40)),
		"no CLAS": header(true).add("UUID", nil).add("WRAP", u32(2)).add("WPKY", make([]byte, 40)),
		"no WRAP": header(true).add("UUID", nil).add("CLAS", u32(1)).add("WPKY", make([]byte, 40)),
		"no WPKY": header(true).add("UUID", nil).add("CLAS", u32(1)).add("WRAP", u32(2)),
		"no WPKY in first of two": group(header(true).add("UUID", nil).add("CLAS", u32(1)).
			add("WRAP", u32(2)), 2),
		"CLAS 2 bytes":  header(true).add("UUID", nil).add("CLAS", []byte{0, 1}).add("WRAP", u32(2)).add("WPKY", make([]byte, 40)),
		"KTYP 0 bytes":  group(header(true), 1).add("UUID", nil).add("CLAS", u32(2)).add("WRAP", u32(2)).add("KTYP", nil).add("WPKY", make([]byte, 40)),
		"two WPKYs":     group(header(true), 1).add("WPKY", make([]byte, 40)),
		"two CLAS":      group(header(true), 1).add("CLAS", u32(4)),
		"short WPKY":    header(true).add("UUID", nil).add("CLAS", u32(1)).add("WRAP", u32(2)).add("WPKY", make([]byte, 32)),
		"long WPKY":     header(true).add("UUID", nil).add("CLAS", u32(1)).add("WRAP", u32(3)).add("WPKY", make([]byte, 48)),
		"garbage":       []byte("this is not a keybag at all, just some text"),
		"only a header": tlvs(nil).add("UUID", make([]byte, 16)),
	}
	for name, data := range cases {
		kb, err := Parse(data)
		if !errors.Is(err, ErrMalformed) || kb != nil {
			t.Errorf("%s: %v, %v", name, kb, err)
		}
	}
	// WRAP 0 and WRAP 1 keys of any length are fine (and unavailable).
	for _, wrap := range []uint32{0, 1} {
		ok := header(true).add("UUID", nil).add("CLAS", u32(1)).add("WRAP", u32(wrap)).add("WPKY", make([]byte, 13))
		if _, err := Parse(ok); err != nil {
			t.Errorf("WRAP %d key of 13 bytes: %v", wrap, err)
		}
	}
}

// TestParseTruncated cuts a keybag at every length: Parse never panics,
// fails when the cut is inside a record or a class group, and otherwise
// finds the complete groups before the cut.
func TestParseTruncated(t *testing.T) {
	bag := buildBag(t, 3, "pw", 10, 10, defaultClasses)
	for n := range len(bag.data) {
		kb, err := Parse(bag.data[:n])
		if err == nil && (len(kb.Classes) == 0 || len(kb.Classes) >= len(defaultClasses)) {
			t.Errorf("cut at %d: %d classes", n, len(kb.Classes))
		}
	}
}

func unlockBag(t *testing.T, bag *testBag) *Keys {
	t.Helper()
	kb, err := Parse(bag.data)
	if err != nil {
		t.Fatal(err)
	}
	dk, err := kb.DeriveKey(context.Background(), []byte(bag.password), nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kb.Unlock(dk)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestUnlock(t *testing.T) {
	for _, dp := range []int{0, 50} {
		bag := buildBag(t, 4, "correct horse", dp, 20, defaultClasses)
		keys := unlockBag(t, bag)
		var want []uint32
		for c := range bag.keys {
			want = append(want, c)
		}
		slices.Sort(want)
		if got := keys.Available(); !slices.Equal(got, want) {
			t.Errorf("available classes %v, want %v", got, want)
		}
		r := rand.New(rand.NewPCG(5, 6))
		for _, c := range want {
			key, w := bag.wrapFor(t, r, c)
			got, err := keys.UnwrapKey(w)
			if err != nil || !bytes.Equal(got, key) {
				t.Errorf("class %d: %v", c, err)
			}
		}

		kb, _ := Parse(bag.data)
		wrong, err := kb.DeriveKey(context.Background(), []byte("correct horsf"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if k, err := kb.Unlock(wrong); !errors.Is(err, ErrWrongPassword) || k != nil {
			t.Errorf("wrong password: %v", err)
		}
		if _, err := kb.Unlock(wrong[:16]); err == nil || errors.Is(err, ErrWrongPassword) {
			t.Errorf("16-byte derived key: %v", err)
		}
	}
}

func TestUnwrapKeyErrors(t *testing.T) {
	bag := buildBag(t, 10, "pw", 10, 10, defaultClasses)
	keys := unlockBag(t, bag)
	r := rand.New(rand.NewPCG(7, 8))
	key, w := bag.wrapFor(t, r, 3)
	if got, err := keys.UnwrapKey(w); err != nil || !bytes.Equal(got, key) {
		t.Fatal(err)
	}
	for _, n := range []int{0, 40, 43, 45} {
		if _, err := keys.UnwrapKey(make([]byte, n)); !errors.Is(err, ErrKeyLength) {
			t.Errorf("%d bytes: %v", n, err)
		}
	}
	other := bytes.Clone(w)
	binary.LittleEndian.PutUint32(other, 99)
	if _, err := keys.UnwrapKey(other); !errors.Is(err, ErrUnknownClass) {
		t.Errorf("class 99: %v", err)
	}
	for _, c := range []uint32{5, 8, 9, 11} { // device-wrapped or not 32 bytes
		binary.LittleEndian.PutUint32(other, c)
		if _, err := keys.UnwrapKey(other); !errors.Is(err, ErrClassUnavailable) {
			t.Errorf("class %d: %v", c, err)
		}
	}
	binary.LittleEndian.PutUint32(other, 4) // another class's key
	if _, err := keys.UnwrapKey(other); !errors.Is(err, ErrUnwrap) {
		t.Errorf("class 4 key for a class 3 value: %v", err)
	}
	for bit := 32; bit < 44*8; bit += 13 {
		bad := bytes.Clone(w)
		bad[bit/8] ^= 1 << (bit % 8)
		if _, err := keys.UnwrapKey(bad); !errors.Is(err, ErrUnwrap) {
			t.Errorf("bit %d flipped: %v", bit, err)
		}
	}
}

// TestUnlockWithoutPasscodeClass: nothing to check the password against.
func TestUnlockWithoutPasscodeClass(t *testing.T) {
	bag := buildBag(t, 11, "pw", 0, 5, []bagClass{{class: 10, wrap: 0}, {class: 9, wrap: 1}})
	kb, err := Parse(bag.data)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kb.Unlock(make([]byte, 32))
	if err != nil || !slices.Equal(keys.Available(), []uint32{10}) {
		t.Fatalf("%v %v", keys.Available(), err)
	}
}

func TestCacheKey(t *testing.T) {
	a := buildBag(t, 12, "pw", 10, 10, defaultClasses)
	kbA, _ := Parse(a.data)
	// The same derivation inputs with other class keys: a dated copy.
	b := tlvs(nil).add("UUID", make([]byte, 16)).add("SALT", a.salt).add("ITER", u32(10)).
		add("DPIC", u32(10)).add("DPSL", a.dpSalt)
	kbB, err := Parse(group(b, 1))
	if err != nil {
		t.Fatal(err)
	}
	if kbA.CacheKey() != kbB.CacheKey() || len(kbA.CacheKey()) != 64 {
		t.Errorf("same inputs, cache keys %s and %s", kbA.CacheKey(), kbB.CacheKey())
	}
	seen := map[string]bool{kbA.CacheKey(): true}
	for _, change := range []func(*Keybag){
		func(k *Keybag) { k.Iter++ },
		func(k *Keybag) { k.DPIter++ },
		func(k *Keybag) { k.Salt = append(bytes.Clone(k.Salt), 0) },
		func(k *Keybag) { k.DPSalt = append(bytes.Clone(k.DPSalt), 0) },
		func(k *Keybag) { k.HasDP = false },
		// Moving a byte between the salts must change the key too.
		func(k *Keybag) { k.Salt, k.DPSalt = k.Salt[:19], append(bytes.Clone(k.DPSalt), k.Salt[19]) },
	} {
		kb, _ := Parse(a.data)
		change(kb)
		ck := kb.CacheKey()
		if seen[ck] {
			t.Errorf("cache key %s repeated", ck)
		}
		seen[ck] = true
	}
}

func FuzzParse(f *testing.F) {
	bag := buildBag(f, 13, "pw", 10, 10, defaultClasses)
	for n := range len(bag.data) + 1 {
		f.Add(bag.data[:n])
	}
	f.Add(buildBag(f, 14, "pw", 0, 10, defaultClasses[:3]).data)
	f.Add([]byte(group(group(header(true), 1), 2)))
	f.Fuzz(func(t *testing.T, data []byte) {
		kb, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || kb != nil {
				t.Fatalf("error %v does not match ErrMalformed", err)
			}
			return
		}
		if kb.Iter < 1 || len(kb.Salt) == 0 || len(kb.Classes) == 0 {
			t.Fatalf("accepted %+v", kb)
		}
		if kb.HasDP && (kb.DPIter < 1 || len(kb.DPSalt) == 0) {
			t.Fatalf("accepted %+v", kb)
		}
		seen := map[uint32]bool{}
		for _, c := range kb.Classes {
			if seen[c.Class] || (c.Wrap&WrapPasscode != 0 && len(c.WrappedKey) != 40) {
				t.Fatalf("accepted class %+v", c)
			}
			seen[c.Class] = true
		}
		// A parsed keybag always unlocks or fails cleanly.
		keys, err := kb.Unlock(make([]byte, 32))
		if err == nil {
			_, _ = keys.UnwrapKey(make([]byte, 44))
		}
		_ = kb.CacheKey()
	})
}
