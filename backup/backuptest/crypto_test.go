package backuptest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/iotest"

	kbag "github.com/mbaudit/mbaudit/backup/keybag"
)

func chacha(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return rand.NewChaCha8(s)
}

func TestCrypto(t *testing.T) {
	t.Parallel()
	for _, legacy := range []bool{false, true} {
		c, err := NewCrypto("s3cret pässword", 200, 20, legacy, chacha(1))
		if err != nil {
			t.Fatal(err)
		}
		kb, err := kbag.Parse(c.Keybag())
		if err != nil {
			t.Fatal(err)
		}
		wantVers := uint32(4)
		if legacy {
			wantVers = 3
		}
		if kb.HasDP == legacy || kb.Version != wantVers || kb.Type != 1 || len(kb.Classes) != 11 ||
			len(kb.Salt) != 20 || len(kb.HMCK) != 40 || kb.Iter != 20 {
			t.Errorf("legacy %v: keybag %+v", legacy, kb)
		}
		if dp, _ := kb.Iterations(); !legacy && (dp != 200 || kb.DPWrap != 1 || len(kb.DPSalt) != 20) {
			t.Errorf("DP parameters %+v", kb)
		}
		for i, cl := range kb.Classes {
			if cl.Class != uint32(i+1) || cl.Wrap != kbag.WrapPasscode || cl.KeyType != 0 || len(cl.UUID) != 16 {
				t.Errorf("class %+v", cl)
			}
		}

		dk, err := kb.DeriveKey(context.Background(), []byte("s3cret pässword"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(dk, c.DerivedKey()) {
			t.Fatal("keybag.DeriveKey and crypto/pbkdf2 disagree")
		}
		keys, err := kb.Unlock(dk)
		if err != nil {
			t.Fatal(err)
		}
		if got := keys.Available(); len(got) != 11 {
			t.Errorf("available classes %v", got)
		}
		wrong, err := kb.DeriveKey(context.Background(), []byte("s3cret password"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kb.Unlock(wrong); !errors.Is(err, kbag.ErrWrongPassword) {
			t.Errorf("wrong password: %v", err)
		}

		mw, mk := c.ManifestKey(4)
		if len(mw) != 44 || len(mk) != 32 || binary.LittleEndian.Uint32(mw) != 4 {
			t.Fatalf("ManifestKey %x", mw)
		}
		if got, err := keys.UnwrapKey(mw); err != nil || !bytes.Equal(got, mk) {
			t.Errorf("ManifestKey: %v", err)
		}
		for class := uint32(1); class <= 11; class++ {
			fw, fk := c.FileKey(class)
			if got, err := keys.UnwrapKey(fw); err != nil || !bytes.Equal(got, fk) {
				t.Errorf("FileKey(%d): %v", class, err)
			}
			if bytes.Equal(fk, mk) {
				t.Error("file key repeats the manifest key")
			}
		}

		// Encrypt's output decrypts.
		for _, n := range []int{0, 1, 15, 16, 17, 4096, 100_003} {
			plain := make([]byte, n)
			_, _ = chacha(uint64(n)).Read(plain)
			ct := Encrypt(mk, plain)
			if len(ct)%16 != 0 || len(ct) <= n || len(ct) > n+16 {
				t.Fatalf("%d bytes encrypt to %d", n, len(ct))
			}
			var out bytes.Buffer
			got, err := kbag.Decrypt(&out, iotest.HalfReader(bytes.NewReader(ct)), mk, make([]byte, 4096))
			if err != nil || got != int64(n) || !bytes.Equal(out.Bytes(), plain) {
				t.Errorf("%d bytes: decrypted %d, %v", n, got, err)
			}
			if app := AppendEncrypt([]byte("prefix"), mk, plain); !bytes.Equal(app, append([]byte("prefix"), ct...)) {
				t.Errorf("%d bytes: AppendEncrypt differs", n)
			}
		}
	}
}

func TestCryptoDeterministic(t *testing.T) {
	t.Parallel()
	make2 := func() (*Crypto, []byte, []byte) {
		c, err := NewCrypto("pw", 3, 2, false, chacha(42))
		if err != nil {
			t.Fatal(err)
		}
		w, k := c.FileKey(3)
		return c, w, k
	}
	a, aw, ak := make2()
	b, bw, bk := make2()
	if !bytes.Equal(a.Keybag(), b.Keybag()) || !bytes.Equal(aw, bw) || !bytes.Equal(ak, bk) {
		t.Error("same seed, different keys")
	}
	c, err := NewCrypto("pw", 3, 2, false, chacha(43))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Keybag(), c.Keybag()) {
		t.Error("different seeds, same keybag")
	}
	// Keybag returns a copy.
	kb := a.Keybag()
	kb[0] = 'X'
	if a.Keybag()[0] != 'V' {
		t.Error("Keybag shares its bytes")
	}
}

func TestCryptoErrors(t *testing.T) {
	t.Parallel()
	for _, it := range [][2]int{{0, 1}, {1, 0}, {-1, 1}} {
		if _, err := NewCrypto("pw", it[0], it[1], false, chacha(1)); err == nil {
			t.Errorf("iterations %v accepted", it)
		}
	}
	if _, err := NewCrypto("pw", 0, 1, true, chacha(1)); err != nil {
		t.Errorf("legacy with dpIter 0: %v", err)
	}
	if _, err := NewCrypto("pw", 1, 1, false, io.LimitReader(chacha(1), 50)); err == nil {
		t.Error("short random source accepted")
	}
	c, err := NewCrypto("pw", 1, 1, false, chacha(1))
	if err != nil {
		t.Fatal(err)
	}
	for _, class := range []uint32{0, 12} {
		if _, err := c.WrapKey(class, make([]byte, 32)); err == nil {
			t.Errorf("WrapKey class %d accepted", class)
		}
		if c.ClassKey(class) != nil {
			t.Errorf("ClassKey(%d) not nil", class)
		}
	}
	if _, err := c.WrapKey(3, make([]byte, 16)); err == nil {
		t.Error("16-byte key wrapped")
	}
	w, err := c.WrapKey(3, bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	if k, err := kbag.Unwrap(c.ClassKey(3), w[4:]); err != nil || !slices.Equal(k, bytes.Repeat([]byte{7}, 32)) {
		t.Errorf("WrapKey: %v", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("FileKey(12) did not panic")
			}
		}()
		c.FileKey(12)
	}()
}
