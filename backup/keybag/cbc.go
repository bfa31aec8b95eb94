package keybag

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
)

// minBuf is the scratch Decrypt allocates when the caller's buf is too small.
const minBuf = 32 << 10

// Decrypt decrypts AES-256-CBC ciphertext with an all-zero IV and PKCS#7
// padding (how Manifest.db and every blob of an encrypted backup are
// stored), streaming it from r to w (which may be io.Discard). It returns
// the number of plaintext bytes written to w.
//
// buf is scratch space, used in a multiple of 16 bytes; a caller decrypting
// many files passes the same buffer (256 KiB, say) every time so that no
// large allocation happens per call. Decrypt allocates its own when buf holds
// fewer than 32 bytes. The last block is held back until r reports EOF, so
// the padding never reaches w.
//
// Errors: an empty ciphertext, one whose length is not a multiple of 16 and
// bad padding (usually a wrong key) match ErrPadding. Decrypt streams, so
// by then it has written what came before the end (everything but the last
// block, for bad padding; the count says how much); a caller that must not
// keep unchecked plaintext discards it on error. A read error from r is
// returned wrapped (errors.Is finds it; it does not match ErrPadding), and so
// is a write error from w.
func Decrypt(w io.Writer, r io.Reader, key, buf []byte) (int64, error) {
	if len(key) != 32 {
		return 0, fmt.Errorf("keybag: Decrypt: key is %d bytes, want 32", len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return 0, err
	}
	var iv [aes.BlockSize]byte
	cbc := cipher.NewCBCDecrypter(b, iv[:])
	buf = buf[:len(buf)&^(aes.BlockSize-1)]
	if len(buf) < 2*aes.BlockSize {
		buf = make([]byte, minBuf)
	}
	var written, read int64
	held := 0 // plaintext bytes at buf[:held] not yet written: 0 or one block
	for {
		m, rerr := fill(r, buf[held:])
		read += int64(m)
		if rerr != nil && rerr != io.EOF {
			return written, fmt.Errorf("keybag: reading ciphertext after %d bytes: %w", read, rerr)
		}
		if rerr == nil {
			// buf is full; more may follow, so keep its last block back.
			cbc.CryptBlocks(buf[held:], buf[held:])
			out := buf[:len(buf)-aes.BlockSize]
			if _, err := w.Write(out); err != nil {
				return written, fmt.Errorf("keybag: writing plaintext: %w", err)
			}
			written += int64(len(out))
			held = copy(buf, buf[len(out):])
			continue
		}
		// EOF: buf[:held+m] is the end of the ciphertext.
		switch {
		case read == 0:
			return written, fmt.Errorf("%w: empty ciphertext", ErrPadding)
		case read%aes.BlockSize != 0:
			return written, fmt.Errorf("%w: ciphertext is %d bytes, not a multiple of %d", ErrPadding, read, aes.BlockSize)
		}
		cbc.CryptBlocks(buf[held:held+m], buf[held:held+m])
		end := held + m
		pad := int(buf[end-1])
		if !goodPadding(buf[end-aes.BlockSize : end]) {
			// Write what precedes the last block, as promised.
			if n := end - aes.BlockSize; n > 0 {
				if _, err := w.Write(buf[:n]); err != nil {
					return written, fmt.Errorf("keybag: writing plaintext: %w", err)
				}
				written += int64(n)
			}
			return written, fmt.Errorf("%w: invalid PKCS#7 padding (wrong key or corrupt data)", ErrPadding)
		}
		if n := end - pad; n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return written, fmt.Errorf("keybag: writing plaintext: %w", err)
			}
			written += int64(n)
		}
		return written, nil
	}
}

// goodPadding reports whether the last block of a plaintext ends with valid
// PKCS#7 padding of 1 to 16 bytes, looking at every byte whatever their
// values.
func goodPadding(last []byte) bool {
	pad := last[len(last)-1]
	bad := byte(0)
	if pad == 0 || int(pad) > len(last) {
		bad = 1
	}
	for i, c := range last {
		// Bytes at positions >= len-pad must equal pad.
		inPad := byte(0)
		if i >= len(last)-int(pad) {
			inPad = 1
		}
		bad |= inPad & boolByte(c != pad)
	}
	return bad == 0
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// errNoProgress is returned by fill for a reader that keeps returning
// nothing.
var errNoProgress = errors.New("reader returned no data and no error 100 times")

// fill reads into p until it is full (nil error), the reader reports EOF
// (io.EOF, with what came before) or fails (its error).
func fill(r io.Reader, p []byte) (int, error) {
	n, empty := 0, 0
	for n < len(p) {
		k, err := r.Read(p[n:])
		if k < 0 || k > len(p)-n {
			return n, fmt.Errorf("reader returned an invalid count %d", k)
		}
		n += k
		if err != nil {
			return n, err
		}
		if k == 0 {
			if empty++; empty >= 100 {
				return n, errNoProgress
			}
		}
	}
	return n, nil
}
