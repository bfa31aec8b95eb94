package keybag

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
)

// RFC 3394 AES key wrap with the default initial value.

const wrapIV = 0xA6A6A6A6A6A6A6A6

// Wrap wraps key (a multiple of 8 bytes, at least 16) with the AES key kek
// (16, 24 or 32 bytes) as RFC 3394 describes; the result is 8 bytes longer.
func Wrap(kek, key []byte) ([]byte, error) {
	if len(key) < 16 || len(key)%8 != 0 {
		return nil, fmt.Errorf("keybag: cannot wrap a %d-byte key (want a multiple of 8, at least 16)", len(key))
	}
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("keybag: wrapping key: %w", err)
	}
	return wrapBlock(b, key), nil
}

// Unwrap reverses Wrap. A wrong kek or a corrupt wrapped value fails the
// integrity check with an error matching ErrUnwrap.
func Unwrap(kek, wrapped []byte) ([]byte, error) {
	if err := checkWrapped(wrapped); err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("keybag: unwrapping key: %w", err)
	}
	return unwrapBlock(b, wrapped)
}

func checkWrapped(wrapped []byte) error {
	if len(wrapped) < 24 || len(wrapped)%8 != 0 {
		return fmt.Errorf("keybag: cannot unwrap %d bytes (want a multiple of 8, at least 24)", len(wrapped))
	}
	return nil
}

// wrapBlock wraps key (checked by the caller) with b.
func wrapBlock(b cipher.Block, key []byte) []byte {
	n := len(key) / 8
	// One allocation: the result, then 16 bytes of scratch for the cipher
	// (a local array would escape through the interface call anyway).
	out := make([]byte, 8+len(key)+16)
	r, buf := out[8:8+len(key)], out[8+len(key):]
	copy(r, key)
	a := uint64(wrapIV)
	for j := range 6 {
		for i := range n {
			binary.BigEndian.PutUint64(buf, a)
			copy(buf[8:], r[8*i:8*i+8])
			b.Encrypt(buf, buf)
			a = binary.BigEndian.Uint64(buf) ^ uint64(n*j+i+1)
			copy(r[8*i:], buf[8:])
		}
	}
	binary.BigEndian.PutUint64(out, a)
	clear(buf)
	return out[: 8+len(key) : 8+len(key)]
}

// unwrapBlock unwraps wrapped (checked by the caller) with b.
func unwrapBlock(b cipher.Block, wrapped []byte) ([]byte, error) {
	n := len(wrapped)/8 - 1
	out := make([]byte, 8*n+16)
	r, buf := out[:8*n], out[8*n:]
	copy(r, wrapped[8:])
	a := binary.BigEndian.Uint64(wrapped)
	for j := 5; j >= 0; j-- {
		for i := n - 1; i >= 0; i-- {
			binary.BigEndian.PutUint64(buf, a^uint64(n*j+i+1))
			copy(buf[8:], r[8*i:8*i+8])
			b.Decrypt(buf, buf)
			a = binary.BigEndian.Uint64(buf)
			copy(r[8*i:], buf[8:])
		}
	}
	clear(buf)
	// A single word comparison: no early exit to time.
	if a != wrapIV {
		clear(r)
		return nil, ErrUnwrap
	}
	return r[: 8*n : 8*n], nil
}
