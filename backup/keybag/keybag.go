// Package keybag parses the BackupKeyBag of an encrypted iOS backup, derives
// the key protecting it from the backup password, unwraps its class keys and
// decrypts what they protect: the ManifestKey that encrypts Manifest.db and
// the per-file keys of the blobs.
//
// The keybag is a sequence of TLV records (4-byte ASCII tag, 4-byte
// big-endian length, value). Header records come first (VERS, TYPE, UUID,
// HMCK, WRAP, SALT, ITER and, from iOS 10.2, DPWT, DPIC, DPSL); then one group
// per protection class, each opened by a UUID record and holding CLAS, WRAP,
// KTYP, WPKY and optionally PBKY.
//
// Unlocking takes three steps: Parse, DeriveKey (two rounds of PBKDF2, the
// slow part: seconds for a modern keybag) and Unlock. Keys.UnwrapKey then
// turns a 44-byte "class + wrapped key" value into an AES-256 key, and
// Decrypt decrypts a file with it.
//
// Nothing in this package logs or formats a password or a key.
package keybag

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
)

var (
	// ErrWrongPassword is returned by Unlock when a passcode-wrapped class
	// key fails the RFC 3394 integrity check: the derived key, and so the
	// password, is wrong.
	ErrWrongPassword = errors.New("wrong password")
	// ErrMalformed is matched (errors.Is) by every error Parse returns.
	ErrMalformed = errors.New("malformed keybag")
	// ErrPadding is matched by Decrypt errors about the ciphertext length
	// (empty or not a multiple of 16) or its PKCS#7 padding. Bad padding most
	// often means a wrong key.
	ErrPadding = errors.New("bad ciphertext length or padding")
	// ErrUnwrap is matched when RFC 3394 unwrapping fails its integrity
	// check: wrong key-encryption key or corrupt wrapped key.
	ErrUnwrap = errors.New("key unwrap integrity check failed")
	// ErrUnknownClass is matched by UnwrapKey errors for a protection class
	// the keybag does not have.
	ErrUnknownClass = errors.New("protection class not in keybag")
	// ErrClassUnavailable is matched by UnwrapKey errors for a protection
	// class whose key cannot be recovered with the password alone (it is
	// also wrapped with the device's hardware key, for example).
	ErrClassUnavailable = errors.New("protection class key unavailable")
	// ErrKeyLength is matched by UnwrapKey errors for a value that is not
	// 44 bytes long.
	ErrKeyLength = errors.New("wrapped key has the wrong length")
)

// Bits of a class's WRAP value.
const (
	WrapDevice   = 1 // wrapped with the device's hardware key (not available offline)
	WrapPasscode = 2 // wrapped (RFC 3394) with the key derived from the password
)

// Class is one protection class group of a keybag.
type Class struct {
	Class      uint32 // CLAS: protection class number
	UUID       []byte // the group's UUID
	Wrap       uint32 // WRAP: WrapDevice and WrapPasscode bits
	KeyType    uint32 // KTYP: 0 AES, 1 Curve25519 (0 when absent)
	WrappedKey []byte // WPKY: the wrapped class key
	PublicKey  []byte // PBKY, nil when absent
}

// Keybag is a parsed keybag. Parse checks it; a Keybag built by hand must
// satisfy the same rules for DeriveKey and Unlock to work.
type Keybag struct {
	Version uint32 // VERS (0 when absent)
	Type    uint32 // TYPE: 0 system, 1 backup, 2 escrow, 3 OTA (0 when absent)
	UUID    []byte // the keybag's UUID
	HMCK    []byte // HMCK, nil when absent
	Wrap    uint32 // the header's WRAP (0 when absent)
	Salt    []byte // SALT: salt of the PBKDF2-HMAC-SHA1 step
	Iter    int    // ITER: iterations of the PBKDF2-HMAC-SHA1 step, > 0

	// HasDP is true when the keybag has DPIC and DPSL (iOS 10.2 and later):
	// the password first goes through PBKDF2-HMAC-SHA256 with them.
	HasDP  bool
	DPWrap uint32 // DPWT (0 when absent)
	DPSalt []byte // DPSL
	DPIter int    // DPIC, > 0 when HasDP

	Classes []Class // in keybag order; Class numbers are unique
}

// Tags by where they may appear. WRAP belongs to the header before the
// first class group and to the group after.
var (
	headerTags = map[string]bool{"VERS": true, "TYPE": true, "HMCK": true, "SALT": true,
		"ITER": true, "DPWT": true, "DPIC": true, "DPSL": true}
	classTags = map[string]bool{"CLAS": true, "KTYP": true, "WPKY": true, "PBKY": true}
	intTags   = map[string]bool{"VERS": true, "TYPE": true, "WRAP": true, "ITER": true,
		"DPWT": true, "DPIC": true, "CLAS": true, "KTYP": true}
)

// wrappedClassKeyLen is the length of a passcode-wrapped class key: a
// 32-byte key wrapped with RFC 3394.
const wrappedClassKeyLen = 40

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Parse parses a keybag (Manifest.plist's BackupKeyBag). It is strict: a
// truncated record, an integer tag whose value is not 4 bytes, a repeated
// tag, a missing SALT, ITER, CLAS, WRAP or WPKY, a zero iteration count, DPIC
// without DPSL (or the reverse), a passcode-wrapped class key that is not 40
// bytes, two groups of the same class or no class group at all are errors
// matching ErrMalformed. Unknown tags are skipped. The result holds copies:
// data may be reused.
func Parse(data []byte) (*Keybag, error) {
	kb := &Keybag{}
	seen := map[string]bool{}
	var cur *Class
	var curSeen map[string]bool
	classes := map[uint32]bool{}
	finish := func() error {
		if cur == nil {
			return nil
		}
		for _, t := range []string{"CLAS", "WRAP", "WPKY"} {
			if !curSeen[t] {
				return malformed("class group %d has no %s", len(kb.Classes)+1, t)
			}
		}
		if classes[cur.Class] {
			return malformed("protection class %d appears twice", cur.Class)
		}
		classes[cur.Class] = true
		if cur.Wrap&WrapPasscode != 0 && len(cur.WrappedKey) != wrappedClassKeyLen {
			return malformed("class %d: passcode-wrapped key is %d bytes, want %d",
				cur.Class, len(cur.WrappedKey), wrappedClassKeyLen)
		}
		kb.Classes = append(kb.Classes, *cur)
		cur = nil
		return nil
	}
	for off := 0; off < len(data); {
		if len(data)-off < 8 {
			return nil, malformed("truncated record header at offset %d (%d bytes left)", off, len(data)-off)
		}
		tag := string(data[off : off+4])
		n := binary.BigEndian.Uint32(data[off+4:])
		if uint64(n) > uint64(len(data)-off-8) {
			return nil, malformed("record %q at offset %d: %d-byte value past the end (%d bytes left)",
				printable(tag), off, n, len(data)-off-8)
		}
		v := data[off+8 : off+8+int(n)]
		at := off
		off += 8 + int(n)

		var u uint32
		if intTags[tag] {
			if len(v) != 4 {
				return nil, malformed("%s at offset %d is %d bytes, want 4", tag, at, len(v))
			}
			u = binary.BigEndian.Uint32(v)
		}
		switch {
		case tag == "UUID" && !seen["UUID"]:
			seen["UUID"] = true
			kb.UUID = bytes.Clone(v)
		case tag == "UUID":
			if err := finish(); err != nil {
				return nil, err
			}
			cur = &Class{UUID: bytes.Clone(v)}
			curSeen = map[string]bool{}
		case headerTags[tag] || (tag == "WRAP" && cur == nil):
			if seen[tag] {
				return nil, malformed("%s appears twice (offset %d)", tag, at)
			}
			seen[tag] = true
			if err := kb.setHeader(tag, v, u); err != nil {
				return nil, err
			}
		case classTags[tag] || tag == "WRAP":
			if cur == nil {
				return nil, malformed("%s at offset %d is outside a class group", tag, at)
			}
			if curSeen[tag] {
				return nil, malformed("%s appears twice in class group %d (offset %d)", tag, len(kb.Classes)+1, at)
			}
			curSeen[tag] = true
			switch tag {
			case "CLAS":
				cur.Class = u
			case "WRAP":
				cur.Wrap = u
			case "KTYP":
				cur.KeyType = u
			case "WPKY":
				cur.WrappedKey = bytes.Clone(v)
			case "PBKY":
				cur.PublicKey = bytes.Clone(v)
			}
		}
	}
	if err := finish(); err != nil {
		return nil, err
	}
	switch {
	case len(data) == 0:
		return nil, malformed("empty")
	case !seen["SALT"]:
		return nil, malformed("no SALT")
	case !seen["ITER"]:
		return nil, malformed("no ITER")
	case seen["DPIC"] != seen["DPSL"]:
		return nil, malformed("DPIC and DPSL must come together")
	case len(kb.Classes) == 0:
		return nil, malformed("no class group")
	}
	kb.HasDP = seen["DPIC"]
	return kb, nil
}

// setHeader stores one header record; u is the value of an integer tag.
func (kb *Keybag) setHeader(tag string, v []byte, u uint32) error {
	count := func() (int, error) {
		if u == 0 || u > math.MaxInt32 {
			return 0, malformed("%s is %d", tag, u)
		}
		return int(u), nil
	}
	var err error
	switch tag {
	case "VERS":
		kb.Version = u
	case "TYPE":
		kb.Type = u
	case "WRAP":
		kb.Wrap = u
	case "DPWT":
		kb.DPWrap = u
	case "HMCK":
		kb.HMCK = bytes.Clone(v)
	case "ITER":
		kb.Iter, err = count()
	case "DPIC":
		kb.DPIter, err = count()
	case "SALT", "DPSL":
		if len(v) == 0 {
			return malformed("empty %s", tag)
		}
		if tag == "SALT" {
			kb.Salt = bytes.Clone(v)
		} else {
			kb.DPSalt = bytes.Clone(v)
		}
	}
	return err
}

// printable shows a tag that may hold any bytes.
func printable(tag string) string {
	for i := 0; i < len(tag); i++ {
		if tag[i] < 0x20 || tag[i] > 0x7e {
			return hex.EncodeToString([]byte(tag))
		}
	}
	return tag
}

// Iterations returns the PBKDF2 iteration counts: dp for the
// PBKDF2-HMAC-SHA256 step (0 for a keybag without DPIC) and sha1 for the
// PBKDF2-HMAC-SHA1 step. Real keybags have 10,000,000 and 10,000.
func (kb *Keybag) Iterations() (dp, sha1 int) {
	if kb.HasDP {
		dp = kb.DPIter
	}
	return dp, kb.Iter
}

// Class returns the group of protection class c, or nil.
func (kb *Keybag) Class(c uint32) *Class {
	for i := range kb.Classes {
		if kb.Classes[i].Class == c {
			return &kb.Classes[i]
		}
	}
	return nil
}

// CacheKey identifies the inputs of DeriveKey other than the password: the
// salts and iteration counts, hashed. Two keybags with the same CacheKey
// derive the same key from the same password (dated copies of one backup
// share their keybag), so a caller may keep derived keys by (CacheKey,
// password) and skip the slow derivation. The string reveals nothing about
// the password.
func (kb *Keybag) CacheKey() string {
	h := sha256.New()
	var b []byte
	b = append(b, "mbaudit keybag derivation v1\x00"...)
	if kb.HasDP {
		b = append(b, 1)
		b = binary.BigEndian.AppendUint64(b, uint64(kb.DPIter))
		b = binary.BigEndian.AppendUint64(b, uint64(len(kb.DPSalt)))
		b = append(b, kb.DPSalt...)
	} else {
		b = append(b, 0)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(kb.Iter))
	b = binary.BigEndian.AppendUint64(b, uint64(len(kb.Salt)))
	b = append(b, kb.Salt...)
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}
