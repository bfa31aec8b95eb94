package keybag

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"math"
)

// The derivation checks for cancellation every checkEvery iterations and
// reports progress every reportEvery iterations (a few milliseconds apart
// on current hardware: an iteration is two hash blocks twice, well under a
// microsecond).
const (
	checkEvery  = 1 << 12
	reportEvery = 1 << 15
)

// pbkdf2Key is PBKDF2 (RFC 8018) with HMAC over h: the same loop as
// crypto/pbkdf2, cut into chunks of checkEvery iterations. After each chunk
// and at the end of each block it calls tick with the iterations done since
// its last call; an error from tick stops the derivation and is returned.
func pbkdf2Key(h func() hash.Hash, password, salt []byte, iter, keyLen int, tick func(n int) error) ([]byte, error) {
	if iter < 1 || keyLen < 1 {
		return nil, fmt.Errorf("keybag: pbkdf2: %d iterations, %d-byte key", iter, keyLen)
	}
	prf := hmac.New(h, password)
	hLen := prf.Size()
	blocks := (keyLen + hLen - 1) / hLen
	dk := make([]byte, 0, blocks*hLen)
	u := make([]byte, 0, hLen)
	var ctr [4]byte
	for block := 1; block <= blocks; block++ {
		// T = U_1 ^ U_2 ^ ... ^ U_iter, U_1 = PRF(salt || INT(block)),
		// U_n = PRF(U_(n-1)).
		prf.Reset()
		prf.Write(salt)
		ctr[0], ctr[1], ctr[2], ctr[3] = byte(block>>24), byte(block>>16), byte(block>>8), byte(block)
		prf.Write(ctr[:])
		dk = prf.Sum(dk)
		t := dk[len(dk)-hLen:]
		u = append(u[:0], t...)
		pending := 1
		for n := 2; n <= iter; n++ {
			prf.Reset()
			prf.Write(u)
			u = prf.Sum(u[:0])
			for i := range u {
				t[i] ^= u[i]
			}
			if pending++; pending == checkEvery && tick != nil {
				if err := tick(pending); err != nil {
					clear(dk[:cap(dk)])
					clear(u)
					return nil, err
				}
				pending = 0
			}
		}
		if tick != nil && pending > 0 {
			if err := tick(pending); err != nil {
				clear(dk[:cap(dk)])
				clear(u)
				return nil, err
			}
		}
	}
	clear(u)
	return dk[:keyLen], nil
}

// Work returns the number of PBKDF2 iterations DeriveKey runs: DPIC for the
// SHA-256 step (one 32-byte block) plus 2*ITER for the SHA-1 step (a 32-byte
// key takes two 20-byte blocks). The two kinds cost about the same.
func (kb *Keybag) Work() int64 {
	dp, it := kb.Iterations()
	return int64(dp) + 2*int64(it)
}

// DeriveKey derives the 32-byte key that unwraps the class keys from
// password: PBKDF2-HMAC-SHA256(password, DPSL, DPIC, 32) then
// PBKDF2-HMAC-SHA1(that, SALT, ITER, 32), or only the second step on the
// password itself for a keybag without DPIC (before iOS 10.2).
//
// It checks ctx every few thousand iterations and returns ctx.Err()
// promptly once ctx is done. progress, if not nil, is called with
// (done, total) counted in PBKDF2 iterations (total is Work()): with (0,
// total) first, every few tens of thousands of iterations, and with
// (total, total) on success. It runs on the calling goroutine.
//
// A modern keybag (DPIC 10,000,000) takes seconds: see BenchmarkDeriveKey.
func (kb *Keybag) DeriveKey(ctx context.Context, password []byte, progress func(done, total int64)) ([]byte, error) {
	if kb.Iter < 1 || len(kb.Salt) == 0 || (kb.HasDP && (kb.DPIter < 1 || len(kb.DPSalt) == 0)) {
		return nil, errors.New("keybag: DeriveKey: keybag lacks a salt or an iteration count")
	}
	if kb.Iter > math.MaxInt32 || kb.DPIter > math.MaxInt32 {
		return nil, errors.New("keybag: DeriveKey: iteration count out of range")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	total := kb.Work()
	var done, reported int64
	tick := func(n int) error {
		done += int64(n)
		if progress != nil && done-reported >= reportEvery && done < total {
			reported = done
			progress(done, total)
		}
		return ctx.Err()
	}
	if progress != nil {
		progress(0, total)
	}
	key := password
	if kb.HasDP {
		k, err := pbkdf2Key(sha256.New, password, kb.DPSalt, kb.DPIter, 32, tick)
		if err != nil {
			return nil, err
		}
		defer clear(k)
		key = k
	}
	dk, err := pbkdf2Key(sha1.New, key, kb.Salt, kb.Iter, 32, tick)
	if err != nil {
		return nil, err
	}
	if progress != nil {
		progress(total, total)
	}
	return dk, nil
}
