package keybag

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"hash"
	"io"
	"math/rand/v2"
	"testing"
)

// Run the slow ones once:
//
//	go test -run '^$' -bench DeriveKey -benchtime 1x ./backup/keybag

// BenchmarkDeriveKey times the password derivation with the iteration
// counts of real keybags: iOS 10.2 and later (DPIC 10,000,000 then ITER
// 10,000) and older ones (ITER 10,000 only).
func BenchmarkDeriveKey(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, bc := range []struct {
		name         string
		dpIter, iter int
	}{
		{"dpic=10M+iter=10k", 10_000_000, 10_000},
		{"iter=10k-legacy", 0, 10_000},
	} {
		b.Run(bc.name, func(b *testing.B) {
			kb := &Keybag{Salt: randBytes(r, 20), Iter: bc.iter}
			if bc.dpIter > 0 {
				kb.HasDP, kb.DPIter, kb.DPSalt = true, bc.dpIter, randBytes(r, 20)
			}
			pw := []byte("benchmark password")
			for b.Loop() {
				if _, err := kb.DeriveKey(context.Background(), pw, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(kb.Work()), "ns/iter")
		})
	}
}

// BenchmarkPBKDF2 compares this package's loop with crypto/pbkdf2 at
// 100,000 iterations and a 32-byte key (two blocks for SHA-1, one for
// SHA-256; ns/iter is per PRF iteration).
func BenchmarkPBKDF2(b *testing.B) {
	const iter = 100_000
	pw, salt := []byte("benchmark password"), []byte("0123456789abcdef0123")
	for _, h := range []struct {
		name   string
		new    func() hash.Hash
		blocks int
	}{{"sha1", sha1.New, 2}, {"sha256", sha256.New, 1}} {
		b.Run("own/"+h.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := pbkdf2Key(h.new, pw, salt, iter, 32, func(int) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(iter*h.blocks), "ns/iter")
		})
		b.Run("stdlib/"+h.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := pbkdf2.Key(h.new, string(pw), salt, iter, 32); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(iter*h.blocks), "ns/iter")
		})
	}
}

// BenchmarkDecrypt decrypts a 4 MiB blob into io.Discard with a 256 KiB
// buffer, as an audit does.
func BenchmarkDecrypt(b *testing.B) {
	ct := encrypt(testKey, bytes.Repeat([]byte("plaintext"), 4<<20/9))
	buf := make([]byte, 256<<10)
	rd := bytes.NewReader(ct)
	b.SetBytes(int64(len(ct)))
	for b.Loop() {
		rd.Reset(ct)
		if _, err := Decrypt(io.Discard, rd, testKey, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnwrapKey unwraps one file's EncryptionKey with an unlocked
// class key.
func BenchmarkUnwrapKey(b *testing.B) {
	bag := buildBag(b, 1, "pw", 1, 1, defaultClasses)
	kb, err := Parse(bag.data)
	if err != nil {
		b.Fatal(err)
	}
	keys, err := kb.Unlock(bag.derived)
	if err != nil {
		b.Fatal(err)
	}
	_, w := bag.wrapFor(b, rand.New(rand.NewPCG(2, 2)), 3)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := keys.UnwrapKey(w); err != nil {
			b.Fatal(err)
		}
	}
}
