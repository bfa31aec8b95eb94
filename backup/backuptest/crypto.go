package backuptest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	kbag "github.com/mbaudit/mbaudit/backup/keybag" // plists.go has a func keybag
)

// This file makes the keys of real encrypted backups: a keybag that the
// password unlocks, ManifestKey and per-file keys wrapped with its class
// keys, and AES-256-CBC ciphertext. The key derived from the password comes
// from the standard library's crypto/pbkdf2, independent of package
// keybag's own PBKDF2 loop, so the tests of one check the other.

// cryptoClasses is how many protection classes a generated keybag holds
// (1 to cryptoClasses).
const cryptoClasses = 11

// Crypto holds the keys of one generated encrypted backup. Its methods are
// safe for concurrent use; ManifestKey and FileKey draw from the random
// source in call order, so for a deterministic result call them in a
// deterministic order.
type Crypto struct {
	keybag    []byte
	derived   []byte
	classKeys [cryptoClasses + 1][]byte // by class; [0] unused
	blocks    [cryptoClasses + 1]cipher.Block

	mu  sync.Mutex
	rnd io.Reader
}

// NewCrypto makes the keybag of an encrypted backup for password, with
// dpIter PBKDF2-HMAC-SHA256 rounds (DPIC) and iter PBKDF2-HMAC-SHA1 rounds
// (ITER); real keybags have 10,000,000 and 10,000, tests want a few. A
// legacy keybag (before iOS 10.2) has no DPWT, DPIC or DPSL and dpIter is
// ignored.
//
// The keybag has the header VERS (4, or 3 for legacy), TYPE 1 (backup),
// UUID, HMCK (40 random bytes), WRAP 0, SALT (20 random bytes), ITER and,
// unless legacy, DPWT 1, DPIC and DPSL (20 random bytes); then classes 1 to
// 11, each with a random UUID, WRAP 2 (wrapped with the derived key), KTYP 0
// and a random 32-byte class key. All randomness comes from rnd, read with
// io.ReadFull, so a seeded rnd gives the same bytes every time.
func NewCrypto(password string, dpIter, iter int, legacy bool, rnd io.Reader) (*Crypto, error) {
	if iter < 1 || iter > 1<<31-1 || (!legacy && (dpIter < 1 || dpIter > 1<<31-1)) {
		return nil, fmt.Errorf("backuptest: NewCrypto: iteration counts %d and %d out of range", dpIter, iter)
	}
	var rerr error
	random := func(n int) []byte {
		b := make([]byte, n)
		if _, err := io.ReadFull(rnd, b); err != nil && rerr == nil {
			rerr = fmt.Errorf("backuptest: NewCrypto: reading random bytes: %w", err)
		}
		return b
	}
	var kb []byte
	tlv := func(tag string, v []byte) {
		kb = append(kb, tag...)
		kb = binary.BigEndian.AppendUint32(kb, uint32(len(v)))
		kb = append(kb, v...)
	}
	u32 := func(v int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }

	vers := 4
	if legacy {
		vers = 3
	}
	tlv("VERS", u32(vers))
	tlv("TYPE", u32(1))
	tlv("UUID", random(16))
	tlv("HMCK", random(40))
	tlv("WRAP", u32(0))
	salt := random(20)
	tlv("SALT", salt)
	tlv("ITER", u32(iter))
	pw := password
	if !legacy {
		dpSalt := random(20)
		tlv("DPWT", u32(1))
		tlv("DPIC", u32(dpIter))
		tlv("DPSL", dpSalt)
		k, err := pbkdf2.Key(sha256.New, password, dpSalt, dpIter, 32)
		if err != nil {
			return nil, fmt.Errorf("backuptest: NewCrypto: %w", err)
		}
		pw = string(k)
	}
	derived, err := pbkdf2.Key(sha1.New, pw, salt, iter, 32)
	if err != nil {
		return nil, fmt.Errorf("backuptest: NewCrypto: %w", err)
	}
	c := &Crypto{derived: derived, rnd: rnd}
	for class := 1; class <= cryptoClasses; class++ {
		tlv("UUID", random(16))
		tlv("CLAS", u32(class))
		tlv("WRAP", u32(kbag.WrapPasscode))
		tlv("KTYP", u32(0))
		key := random(32)
		wpky, err := kbag.Wrap(derived, key)
		if err != nil {
			return nil, fmt.Errorf("backuptest: NewCrypto: %w", err)
		}
		tlv("WPKY", wpky)
		c.classKeys[class] = key
		if c.blocks[class], err = aes.NewCipher(key); err != nil {
			return nil, err
		}
	}
	if rerr != nil {
		return nil, rerr
	}
	c.keybag = kb
	return c, nil
}

// Keybag returns the keybag, Manifest.plist's BackupKeyBag (a copy).
func (c *Crypto) Keybag() []byte { return append([]byte(nil), c.keybag...) }

// DerivedKey returns the key the password derives (a copy): what
// keybag.Keybag.DeriveKey must return.
func (c *Crypto) DerivedKey() []byte { return append([]byte(nil), c.derived...) }

// ClassKey returns the key of protection class 1 to 11 (a copy), or nil.
func (c *Crypto) ClassKey(class uint32) []byte {
	if class < 1 || class > cryptoClasses {
		return nil
	}
	return append([]byte(nil), c.classKeys[class]...)
}

// WrapKey wraps a 32-byte key with the key of protection class 1 to 11 and
// returns the 44-byte form a backup stores (ManifestKey, an MBFile's
// EncryptionKey): the class, 4 bytes little-endian, then the 40-byte
// RFC 3394-wrapped key. It draws nothing from the random source.
func (c *Crypto) WrapKey(class uint32, key []byte) ([]byte, error) {
	if class < 1 || class > cryptoClasses {
		return nil, fmt.Errorf("backuptest: WrapKey: no protection class %d (the keybag has 1 to %d)", class, cryptoClasses)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("backuptest: WrapKey: key is %d bytes, want 32", len(key))
	}
	w, err := kbag.Wrap(c.classKeys[class], key)
	if err != nil {
		return nil, err
	}
	return append(binary.LittleEndian.AppendUint32(make([]byte, 0, 44), class), w...), nil
}

// ManifestKey returns a fresh random key, drawn from the random source,
// and its 44-byte wrapped form for Manifest.plist's ManifestKey (devices
// use class 4). Call it once per backup and keep the result. It panics if
// class is not 1 to 11 or the random source fails.
func (c *Crypto) ManifestKey(class uint32) (wrapped44 []byte, key []byte) {
	return c.freshKey(class)
}

// FileKey returns a fresh random key for one file and its 44-byte wrapped
// form, the MBFile's EncryptionKey. It panics if class is not 1 to 11 or
// the random source fails.
func (c *Crypto) FileKey(class uint32) (wrapped44 []byte, key []byte) {
	return c.freshKey(class)
}

func (c *Crypto) freshKey(class uint32) ([]byte, []byte) {
	key := make([]byte, 32)
	c.mu.Lock()
	_, err := io.ReadFull(c.rnd, key)
	c.mu.Unlock()
	if err != nil {
		panic(fmt.Sprintf("backuptest: reading random bytes: %v", err))
	}
	w, err := c.WrapKey(class, key)
	if err != nil {
		panic(err)
	}
	return w, key
}

// Encrypt returns plaintext encrypted the way an encrypted backup stores
// Manifest.db and every blob: AES-256-CBC with an all-zero IV and PKCS#7
// padding (1 to 16 bytes, so the result is 1 to 16 bytes longer). It
// panics if key is not 32 bytes.
func Encrypt(key, plaintext []byte) []byte {
	return AppendEncrypt(nil, key, plaintext)
}

// AppendEncrypt appends the ciphertext Encrypt returns to dst.
func AppendEncrypt(dst, key, plaintext []byte) []byte {
	if len(key) != 32 {
		panic(fmt.Sprintf("backuptest: Encrypt: key is %d bytes, want 32", len(key)))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	n := len(dst)
	dst = append(dst, plaintext...)
	for range pad {
		dst = append(dst, byte(pad))
	}
	var iv [aes.BlockSize]byte
	cipher.NewCBCEncrypter(b, iv[:]).CryptBlocks(dst[n:], dst[n:])
	return dst
}
