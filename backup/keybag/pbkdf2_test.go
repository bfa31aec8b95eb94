package keybag

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"math/rand/v2"
	"testing"
	"time"
)

// RFC 6070 PBKDF2-HMAC-SHA1 test vectors (the 16,777,216-iteration one is
// left out: seconds of work for nothing the 4096 ones do not cover).
var rfc6070 = []struct {
	password, salt string
	iter           int
	dk             string
}{
	{"password", "salt", 1, "0c60c80f961f0e71f3a9b524af6012062fe037a6"},
	{"password", "salt", 2, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"},
	{"password", "salt", 4096, "4b007901b765489abead49d926f721d065a429c1"},
	{"passwordPASSWORDpassword", "saltSALTsaltSALTsaltSALTsaltSALTsalt", 4096,
		"3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038"},
	{"pass\x00word", "sa\x00lt", 4096, "56fa6aa75548099dcc37d7f03425e0c3"},
}

func TestPBKDF2RFC6070(t *testing.T) {
	for i, v := range rfc6070 {
		want, _ := hex.DecodeString(v.dk)
		got, err := pbkdf2Key(sha1.New, []byte(v.password), []byte(v.salt), v.iter, len(want), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("vector %d (salt %q, %d iterations): got %x, want %x", i+1, v.salt, v.iter, got, want)
		}
	}
}

// TestPBKDF2Stdlib cross-checks against crypto/pbkdf2, around the chunk
// boundaries and for key lengths spanning several blocks.
func TestPBKDF2Stdlib(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	iters := []int{1, 2, 3, checkEvery - 1, checkEvery, checkEvery + 1, 2 * checkEvery, 2*checkEvery + 7}
	for _, h := range []struct {
		name string
		new  func() hash.Hash
	}{{"sha1", sha1.New}, {"sha256", sha256.New}} {
		for _, iter := range iters {
			keyLens := []int{1, 16, 20, 32, 33, 41, 64, 70}
			if iter > 3 {
				keyLens = []int{32, 41} // one and two (SHA-256) or two and three (SHA-1) blocks
			}
			for _, keyLen := range keyLens {
				pw := randBytes(r, r.IntN(80)) // longer than a hash block too
				salt := randBytes(r, r.IntN(40))
				want, err := pbkdf2.Key(h.new, string(pw), salt, iter, keyLen)
				if err != nil {
					t.Fatal(err)
				}
				var ticked int
				got, err := pbkdf2Key(h.new, pw, salt, iter, keyLen, func(n int) error {
					if n < 1 || n > checkEvery {
						t.Errorf("tick(%d)", n)
					}
					ticked += n
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s iter %d len %d: got %x, want %x", h.name, iter, keyLen, got, want)
				}
				blocks := (keyLen + h.new().Size() - 1) / h.new().Size()
				if ticked != blocks*iter {
					t.Errorf("%s iter %d len %d: ticks add up to %d, want %d", h.name, iter, keyLen, ticked, blocks*iter)
				}
			}
		}
	}
	if _, err := pbkdf2Key(sha1.New, nil, nil, 0, 32, nil); err == nil {
		t.Error("0 iterations accepted")
	}
	if _, err := pbkdf2Key(sha1.New, nil, nil, 1, 0, nil); err == nil {
		t.Error("0-byte key accepted")
	}
}

func TestPBKDF2TickError(t *testing.T) {
	stop := errors.New("stop")
	calls := 0
	_, err := pbkdf2Key(sha1.New, []byte("pw"), []byte("salt"), 10*checkEvery, 32, func(int) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if err != stop || calls != 3 {
		t.Errorf("err %v after %d ticks", err, calls)
	}
}

func TestDeriveKey(t *testing.T) {
	for _, tc := range []struct {
		name         string
		dpIter, iter int
	}{{"modern", 1000, 50}, {"legacy", 0, 700}, {"one", 1, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			bag := buildBag(t, 7, "hunter2 ünïcode", tc.dpIter, tc.iter, defaultClasses)
			kb, err := Parse(bag.data)
			if err != nil {
				t.Fatal(err)
			}
			if dp, it := kb.Iterations(); dp != tc.dpIter || it != tc.iter {
				t.Errorf("Iterations() = %d, %d", dp, it)
			}
			var calls [][2]int64
			dk, err := kb.DeriveKey(context.Background(), []byte(bag.password), func(done, total int64) {
				calls = append(calls, [2]int64{done, total})
			})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(dk, bag.derived) {
				t.Fatal("derived key differs from crypto/pbkdf2's")
			}
			total := int64(tc.dpIter + 2*tc.iter)
			if kb.Work() != total || len(calls) < 2 || calls[0] != [2]int64{0, total} || calls[len(calls)-1] != [2]int64{total, total} {
				t.Fatalf("progress calls %v, want (0,%d) ... (%d,%d)", calls, total, total, total)
			}
			for i := 1; i < len(calls); i++ {
				if calls[i][0] <= calls[i-1][0] || calls[i][1] != total {
					t.Fatalf("progress calls not increasing: %v", calls)
				}
			}
			// nil progress is fine too.
			dk2, err := kb.DeriveKey(context.Background(), []byte(bag.password), nil)
			if err != nil || !bytes.Equal(dk2, dk) {
				t.Fatalf("nil progress: %v", err)
			}
		})
	}
}

func TestDeriveKeyProgressLarge(t *testing.T) {
	bag := buildBag(t, 8, "pw", 3*reportEvery+5, 100, defaultClasses[:1])
	kb, err := Parse(bag.data)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	dk, err := kb.DeriveKey(context.Background(), []byte("pw"), func(done, total int64) { n++ })
	if err != nil || !bytes.Equal(dk, bag.derived) {
		t.Fatal(err)
	}
	if n < 4 {
		t.Errorf("%d progress calls for %d iterations", n, kb.Work())
	}
}

func TestDeriveKeyCancel(t *testing.T) {
	bag := buildBag(t, 9, "pw", 1, 1, defaultClasses[:1])
	kb, err := Parse(bag.data)
	if err != nil {
		t.Fatal(err)
	}
	kb.DPIter = 2_000_000_000 // far too many to finish
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	var cancelled time.Time
	_, err = kb.DeriveKey(ctx, []byte("pw"), func(done, total int64) {
		if done > 0 && cancelled.IsZero() {
			cancelled = time.Now()
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	if d := time.Since(cancelled); d > 2*time.Second {
		t.Errorf("returned %v after cancellation (%v in all)", d, time.Since(start))
	}

	// Already done: no work at all.
	_, err = kb.DeriveKey(ctx, []byte("pw"), func(int64, int64) { t.Error("progress called") })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer dcancel()
	if _, err := kb.DeriveKey(dctx, []byte("pw"), nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
}

func TestDeriveKeyUnparsed(t *testing.T) {
	if _, err := (&Keybag{}).DeriveKey(context.Background(), []byte("pw"), nil); err == nil {
		t.Error("empty Keybag derived a key")
	}
	kb := &Keybag{Salt: []byte("s"), Iter: 1, HasDP: true}
	if _, err := kb.DeriveKey(context.Background(), []byte("pw"), nil); err == nil {
		t.Error("HasDP without DPIC derived a key")
	}
}
