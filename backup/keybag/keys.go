package keybag

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Keys holds the class keys of an unlocked keybag. It is safe for
// concurrent use.
type Keys struct {
	classes map[uint32]classKey
}

type classKey struct {
	block  cipher.Block // nil when unavailable
	reason string       // why the key is unavailable
}

// Unlock unwraps the class keys with derived, the key DeriveKey returned.
// Every class whose WRAP has the WrapPasscode bit is unwrapped (RFC 3394);
// if one fails the integrity check the error matches ErrWrongPassword. A
// class also wrapped with the device key (WrapDevice) needs the device's
// hardware key, so it is unavailable, and so is one with WRAP 0 whose key is
// not 32 bytes (a WRAP 0 key of 32 bytes is taken as is).
//
// A keybag with no passcode-wrapped class cannot tell a wrong password:
// Unlock then succeeds with any derived key.
func (kb *Keybag) Unlock(derived []byte) (*Keys, error) {
	if len(derived) != 32 {
		return nil, fmt.Errorf("keybag: Unlock: derived key is %d bytes, want 32", len(derived))
	}
	kek, err := aes.NewCipher(derived)
	if err != nil {
		return nil, err
	}
	keys := &Keys{classes: make(map[uint32]classKey, len(kb.Classes))}
	for _, c := range kb.Classes {
		var key []byte
		var reason string
		switch {
		case c.Wrap&WrapPasscode != 0:
			if err := checkWrapped(c.WrappedKey); err != nil {
				return nil, fmt.Errorf("keybag: class %d: %w", c.Class, err)
			}
			k, err := unwrapBlock(kek, c.WrappedKey)
			if errors.Is(err, ErrUnwrap) {
				return nil, fmt.Errorf("%w (class %d key failed the unwrap integrity check)", ErrWrongPassword, c.Class)
			}
			if err != nil {
				return nil, err
			}
			switch {
			case c.Wrap&WrapDevice != 0:
				reason = "also wrapped with the device's hardware key"
			case len(k) != 32:
				reason = fmt.Sprintf("unwrapped key is %d bytes, want 32", len(k))
			default:
				key = k
			}
			if key == nil {
				clear(k)
			}
		case c.Wrap&WrapDevice != 0:
			reason = "wrapped with the device's hardware key"
		case c.Wrap != 0:
			reason = fmt.Sprintf("unknown WRAP value %d", c.Wrap)
		case len(c.WrappedKey) != 32:
			reason = fmt.Sprintf("unwrapped key is %d bytes, want 32", len(c.WrappedKey))
		default:
			key = c.WrappedKey
		}
		ck := classKey{reason: reason}
		if key != nil {
			if ck.block, err = aes.NewCipher(key); err != nil {
				return nil, err
			}
			if c.Wrap != 0 {
				clear(key)
			}
		}
		keys.classes[c.Class] = ck
	}
	return keys, nil
}

// Available returns the protection classes whose keys Unlock recovered, in
// increasing order.
func (k *Keys) Available() []uint32 {
	var cs []uint32
	for c, ck := range k.classes {
		if ck.block != nil {
			cs = append(cs, c)
		}
	}
	slices.Sort(cs)
	return cs
}

// UnwrapKey unwraps a 44-byte value made of a 4-byte little-endian
// protection class and a 40-byte RFC 3394-wrapped key (Manifest.plist's
// ManifestKey, or an MBFile's EncryptionKey) and returns the 32-byte key.
// Errors match ErrKeyLength, ErrUnknownClass, ErrClassUnavailable or
// ErrUnwrap.
func (k *Keys) UnwrapKey(classAndWrapped []byte) ([]byte, error) {
	if len(classAndWrapped) != 44 {
		return nil, fmt.Errorf("%w: %d bytes, want 44 (4-byte class and 40-byte wrapped key)", ErrKeyLength, len(classAndWrapped))
	}
	class := binary.LittleEndian.Uint32(classAndWrapped)
	ck, ok := k.classes[class]
	if !ok {
		return nil, fmt.Errorf("%w: class %d", ErrUnknownClass, class)
	}
	if ck.block == nil {
		return nil, fmt.Errorf("%w: class %d: %s", ErrClassUnavailable, class, ck.reason)
	}
	key, err := unwrapBlock(ck.block, classAndWrapped[4:])
	if err != nil {
		return nil, fmt.Errorf("class %d: %w", class, err)
	}
	return key, nil
}
