package keybag

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"testing"
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// RFC 3394 section 4 test vectors.
var rfc3394 = []struct{ name, kek, key, wrapped string }{
	{"4.1 128-bit KEK, 128-bit key",
		"000102030405060708090A0B0C0D0E0F",
		"00112233445566778899AABBCCDDEEFF",
		"1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"},
	{"4.6 256-bit KEK, 256-bit key",
		"000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
		"00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F",
		"28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"},
}

func TestWrapRFC3394(t *testing.T) {
	for _, v := range rfc3394 {
		kek, key, want := unhex(v.kek), unhex(v.key), unhex(v.wrapped)
		got, err := Wrap(kek, key)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: Wrap = %X, want %X", v.name, got, want)
		}
		back, err := Unwrap(kek, want)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back, key) {
			t.Errorf("%s: Unwrap = %X, want %X", v.name, back, key)
		}
		// Every flipped bit fails the integrity check.
		for bit := range len(want) * 8 {
			bad := bytes.Clone(want)
			bad[bit/8] ^= 1 << (bit % 8)
			if k, err := Unwrap(kek, bad); !errors.Is(err, ErrUnwrap) || k != nil {
				t.Fatalf("%s: bit %d flipped: %x, %v", v.name, bit, k, err)
			}
		}
		wrongKEK := bytes.Clone(kek)
		wrongKEK[0] ^= 0x80
		if _, err := Unwrap(wrongKEK, want); !errors.Is(err, ErrUnwrap) {
			t.Errorf("%s: wrong KEK: %v", v.name, err)
		}
	}
}

func TestWrapRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, kekLen := range []int{16, 24, 32} {
		for n := 16; n <= 64; n += 8 {
			kek, key := randBytes(r, kekLen), randBytes(r, n)
			w, err := Wrap(kek, key)
			if err != nil || len(w) != n+8 {
				t.Fatalf("Wrap: %d bytes, %v", len(w), err)
			}
			back, err := Unwrap(kek, w)
			if err != nil || !bytes.Equal(back, key) {
				t.Fatalf("kek %d key %d: %v", kekLen, n, err)
			}
		}
	}
}

func TestWrapErrors(t *testing.T) {
	kek := make([]byte, 32)
	for _, n := range []int{0, 8, 15, 17, 33} {
		if _, err := Wrap(kek, make([]byte, n)); err == nil {
			t.Errorf("Wrap of %d bytes accepted", n)
		}
	}
	for _, n := range []int{0, 8, 16, 23, 25, 41} {
		if _, err := Unwrap(kek, make([]byte, n)); err == nil || errors.Is(err, ErrUnwrap) {
			t.Errorf("Unwrap of %d bytes: %v", n, err)
		}
	}
	for _, n := range []int{0, 15, 31, 33} {
		if _, err := Wrap(make([]byte, n), make([]byte, 32)); err == nil {
			t.Errorf("Wrap with a %d-byte KEK accepted", n)
		}
		if _, err := Unwrap(make([]byte, n), make([]byte, 40)); err == nil {
			t.Errorf("Unwrap with a %d-byte KEK accepted", n)
		}
	}
}
