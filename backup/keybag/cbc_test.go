package keybag

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// encrypt is the reference: AES-256-CBC, zero IV, PKCS#7, with crypto/cipher.
func encrypt(key, plain []byte) []byte {
	pad := 16 - len(plain)%16
	buf := append(bytes.Clone(plain), bytes.Repeat([]byte{byte(pad)}, pad)...)
	return rawCBC(key, buf, true)
}

// rawCBC encrypts or decrypts whole blocks without touching padding.
func rawCBC(key, data []byte, enc bool) []byte {
	b, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	out := make([]byte, len(data))
	iv := make([]byte, 16)
	if enc {
		cipher.NewCBCEncrypter(b, iv).CryptBlocks(out, data)
	} else {
		cipher.NewCBCDecrypter(b, iv).CryptBlocks(out, data)
	}
	return out
}

// chunkReader returns at most the next size(i) bytes on its i-th read.
type chunkReader struct {
	data []byte
	size func(i int) int
	i    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(c.data), c.size(c.i))
	c.i++
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

var testKey = bytes.Repeat([]byte{0x42}, 32)

func TestDecryptEveryPadding(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	buf := make([]byte, 64)
	for n := range 70 { // every padding length 1..16, several times
		plain := randBytes(r, n)
		ct := encrypt(testKey, plain)
		if pad := len(ct) - n; pad < 1 || pad > 16 {
			t.Fatalf("reference pad %d", pad)
		}
		var out bytes.Buffer
		got, err := Decrypt(&out, bytes.NewReader(ct), testKey, buf)
		if err != nil || got != int64(n) || !bytes.Equal(out.Bytes(), plain) {
			t.Fatalf("%d bytes: got %d, %v", n, got, err)
		}
		// The same through a one-byte reader and tiny/odd buffers.
		for _, bufLen := range []int{0, 31, 32, 33, 48, 100} {
			out.Reset()
			got, err := Decrypt(&out, iotest.OneByteReader(bytes.NewReader(ct)), testKey, make([]byte, bufLen))
			if err != nil || got != int64(n) || !bytes.Equal(out.Bytes(), plain) {
				t.Fatalf("%d bytes, buf %d, one-byte reads: got %d, %v", n, bufLen, got, err)
			}
		}
	}
}

// withLastBlock encrypts 48 bytes of plaintext whose last block is last.
func withLastBlock(last []byte) []byte {
	p := append(bytes.Repeat([]byte{'x'}, 32), last...)
	return rawCBC(testKey, p, true)
}

func TestDecryptBadPadding(t *testing.T) {
	blk := func(fill byte, tail ...byte) []byte {
		b := bytes.Repeat([]byte{fill}, 16)
		copy(b[16-len(tail):], tail)
		return b
	}
	cases := map[string][]byte{
		"pad 0":             blk(0),
		"pad 17":            blk(17),
		"pad 255":           blk(255),
		"inconsistent 2":    blk('a', 1, 2),
		"inconsistent 16":   append([]byte{15}, bytes.Repeat([]byte{16}, 15)...),
		"inconsistent 5":    blk('a', 5, 5, 4, 5, 5),
		"pad 16 but not 16": blk(16, 'b'),
	}
	for name, last := range cases {
		var out bytes.Buffer
		n, err := Decrypt(&out, bytes.NewReader(withLastBlock(last)), testKey, make([]byte, 32))
		if !errors.Is(err, ErrPadding) {
			t.Errorf("%s: %v", name, err)
		}
		// Everything before the last block was written, not the last block.
		if n != 32 || out.Len() != 32 || !bytes.Equal(out.Bytes(), bytes.Repeat([]byte{'x'}, 32)) {
			t.Errorf("%s: wrote %d (%d), %q", name, n, out.Len(), out.Bytes())
		}
	}
	// Valid edge cases for comparison.
	for _, last := range [][]byte{bytes.Repeat([]byte{16}, 16), blk('a', 1), blk('a', 2, 2)} {
		if _, err := Decrypt(io.Discard, bytes.NewReader(withLastBlock(last)), testKey, nil); err != nil {
			t.Errorf("valid padding %x: %v", last, err)
		}
	}
	// The wrong key almost always gives bad padding.
	wrong := bytes.Repeat([]byte{0x43}, 32)
	if _, err := Decrypt(io.Discard, bytes.NewReader(encrypt(testKey, []byte("hello"))), wrong, nil); !errors.Is(err, ErrPadding) {
		t.Errorf("wrong key: %v", err)
	}
}

func TestDecryptLength(t *testing.T) {
	ct := encrypt(testKey, make([]byte, 100))
	for _, n := range []int{0, 1, 15, 17, 31, 33, len(ct) - 1} {
		var out bytes.Buffer
		_, err := Decrypt(&out, bytes.NewReader(ct[:n]), testKey, make([]byte, 64))
		if !errors.Is(err, ErrPadding) {
			t.Errorf("%d bytes: %v", n, err)
		}
		if out.Len() > n-16 && out.Len() > 0 {
			t.Errorf("%d bytes: wrote %d", n, out.Len())
		}
	}
	// Truncated at a block boundary: padding error (the last block is not the last).
	if _, err := Decrypt(io.Discard, bytes.NewReader(ct[:len(ct)-16]), testKey, nil); !errors.Is(err, ErrPadding) {
		t.Errorf("block-truncated: %v", err)
	}
	for _, n := range []int{0, 16, 31, 33} {
		if _, err := Decrypt(io.Discard, bytes.NewReader(ct), make([]byte, n), nil); err == nil || errors.Is(err, ErrPadding) {
			t.Errorf("%d-byte key: %v", n, err)
		}
	}
}

// errAfter returns data then fails with err.
type errAfter struct {
	r   io.Reader
	err error
}

func (e *errAfter) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		return n, e.err
	}
	return n, err
}

func TestDecryptReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	ct := encrypt(testKey, make([]byte, 1000))
	for _, cut := range []int{0, 5, 16, 500, 512, len(ct) - 1, len(ct)} {
		var out bytes.Buffer
		r := &errAfter{r: iotest.HalfReader(bytes.NewReader(ct[:cut])), err: boom}
		n, err := Decrypt(&out, r, testKey, make([]byte, 64))
		if !errors.Is(err, boom) || errors.Is(err, ErrPadding) {
			t.Errorf("cut %d: %v", cut, err)
		}
		if n != int64(out.Len()) || n > int64(cut) {
			t.Errorf("cut %d: returned %d, wrote %d", cut, n, out.Len())
		}
	}
	// io.ErrUnexpectedEOF from the reader is an I/O error too, not the end.
	r := &errAfter{r: bytes.NewReader(ct[:32]), err: io.ErrUnexpectedEOF}
	if _, err := Decrypt(io.Discard, r, testKey, nil); !errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrPadding) {
		t.Errorf("ErrUnexpectedEOF: %v", err)
	}
	// Data and EOF in one call is fine.
	if n, err := Decrypt(io.Discard, iotest.DataErrReader(bytes.NewReader(ct)), testKey, nil); err != nil || n != 1000 {
		t.Errorf("DataErrReader: %d, %v", n, err)
	}
	// A write error stops it.
	w := &failWriter{after: 100}
	if _, err := Decrypt(w, bytes.NewReader(ct), testKey, make([]byte, 64)); err == nil || errors.Is(err, ErrPadding) {
		t.Errorf("write error: %v", err)
	}
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) > f.after {
		return 0, errors.New("disk full")
	}
	f.after -= len(p)
	return len(p), nil
}

// TestDecryptBig decrypts several MB through odd-sized reads and a buffer
// that is not a multiple of 16.
func TestDecryptBig(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	for _, n := range []int{3<<20 + 5, 4 << 20} {
		plain := randBytes(r, n)
		ct := encrypt(testKey, plain)
		sizes := []int{1, 7, 4093, 65537, 100000, 13}
		cr := &chunkReader{data: ct, size: func(i int) int { return sizes[i%len(sizes)] }}
		var out bytes.Buffer
		got, err := Decrypt(&out, cr, testKey, make([]byte, 256<<10+5))
		if err != nil || got != int64(n) || !bytes.Equal(out.Bytes(), plain) {
			t.Fatalf("%d bytes: got %d, %v", n, got, err)
		}
	}
}

func TestDecryptAllocs(t *testing.T) {
	ct := encrypt(testKey, make([]byte, 1<<20))
	buf := make([]byte, 256<<10)
	rd := bytes.NewReader(ct)
	allocs := testing.AllocsPerRun(5, func() {
		rd.Reset(ct)
		if _, err := Decrypt(io.Discard, rd, testKey, buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 10 {
		t.Errorf("%v allocations per 1 MB decryption", allocs)
	}
}

func FuzzDecrypt(f *testing.F) {
	for _, n := range []int{0, 1, 15, 16, 17, 100} {
		f.Add(encrypt(testKey, make([]byte, n)), uint16(1), uint16(32))
		f.Add(make([]byte, n), uint16(7), uint16(0))
	}
	f.Add(withLastBlock(bytes.Repeat([]byte{16}, 16)), uint16(5), uint16(48))
	f.Fuzz(func(t *testing.T, data []byte, chunk, bufLen uint16) {
		size := func(int) int { return int(chunk%97) + 1 }
		buf := make([]byte, int(bufLen%600))

		// As ciphertext: compare with the reference.
		var out bytes.Buffer
		n, err := Decrypt(&out, &chunkReader{data: data, size: size}, testKey, buf)
		if n != int64(out.Len()) {
			t.Fatalf("returned %d, wrote %d", n, out.Len())
		}
		if len(data) == 0 || len(data)%16 != 0 {
			// Streaming: what came before the tail may have been written,
			// never a block that could be the last.
			whole := len(data) &^ 15
			ref := rawCBC(testKey, data[:whole], false)
			if !errors.Is(err, ErrPadding) || n > int64(max(whole-16, 0)) || !bytes.Equal(out.Bytes(), ref[:n]) {
				t.Fatalf("%d bytes: %d, %v", len(data), n, err)
			}
		} else {
			ref := rawCBC(testKey, data, false)
			pad := int(ref[len(ref)-1])
			valid := pad >= 1 && pad <= 16 && bytes.Equal(ref[len(ref)-pad:], bytes.Repeat([]byte{byte(pad)}, pad))
			switch {
			case valid && err != nil:
				t.Fatalf("valid padding %d: %v", pad, err)
			case valid && (n != int64(len(data)-pad) || !bytes.Equal(out.Bytes(), ref[:len(ref)-pad])):
				t.Fatalf("plaintext %d bytes, want %d", n, len(data)-pad)
			case !valid && (!errors.Is(err, ErrPadding) || !bytes.Equal(out.Bytes(), ref[:len(ref)-16])):
				t.Fatalf("bad padding: %d, %v", n, err)
			}
		}

		// As plaintext: a round trip.
		ct := encrypt(testKey, data)
		out.Reset()
		n, err = Decrypt(&out, &chunkReader{data: ct, size: size}, testKey, buf)
		if err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("round trip of %d bytes: %d, %v", len(data), n, err)
		}
	})
}
