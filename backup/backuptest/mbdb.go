package backuptest

import (
	"encoding/binary"
	"math/rand/v2"
)

// mbdbHeader starts every Manifest.mbdb (iOS 5-9).
const mbdbHeader = "mbdb\x05\x00"

func appendMbdbString(b []byte, s string, null bool) []byte {
	if null {
		return append(b, 0xff, 0xff)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// mbdbRecord appends the record of one row (backup-format.md section 6).
func (w *writer) mbdbRecord(b []byte, rw *row, hash []byte) []byte {
	b = appendMbdbString(b, rw.domain, false)
	b = appendMbdbString(b, rw.path, false)
	b = appendMbdbString(b, rw.target, !(rw.kind == kindSymlink && rw.hasTarget))
	b = appendMbdbString(b, string(hash), hash == nil)
	var key []byte
	if rw.kind == kindFile && w.keyEnc {
		key = encryptionKey(rw)
	}
	b = appendMbdbString(b, string(key), key == nil)
	b = binary.BigEndian.AppendUint16(b, uint16(rw.mode))
	b = binary.BigEndian.AppendUint64(b, uint64(rw.inode))
	b = binary.BigEndian.AppendUint32(b, uint32(rw.uid))
	b = binary.BigEndian.AppendUint32(b, uint32(rw.gid))
	b = binary.BigEndian.AppendUint32(b, uint32(rw.mtime))
	b = binary.BigEndian.AppendUint32(b, uint32(rw.ctime))
	b = binary.BigEndian.AppendUint32(b, uint32(rw.birth))
	b = binary.BigEndian.AppendUint64(b, uint64(rw.size))
	b = append(b, byte(rw.pclass))
	if rw.xattr {
		b = append(b, 1)
		b = appendMbdbString(b, "com.apple.TextEncoding", false)
		b = appendMbdbString(b, "utf-8;134217984", false)
	} else {
		b = append(b, 0)
	}
	return b
}

// writeMbdb writes Manifest.mbdb; hashes holds the SHA-1 of each file's blob.
func (w *writer) writeMbdb(hashes [][20]byte) error {
	s := w.s
	r := rand.New(rand.NewPCG(uint64(s.seed), 0x6d626462))
	b := []byte(mbdbHeader)
	if s.garbMbdb {
		g := make([]byte, 512+r.IntN(4096))
		fillRandom(g, r.Uint64())
		g[0], g[1] = 0xff, 0xfe // a first string longer than the file
		return w.writeFile("Manifest.mbdb", append(b, g...))
	}
	last := 0
	for i := range w.rows {
		rw := &w.rows[i]
		var hash []byte
		if rw.kind == kindFile {
			hash = hashes[i][:]
			if rw.badHash {
				hash = make([]byte, 20)
				fillRandom(hash, rw.key^streamDigest)
			}
		}
		last = len(b)
		b = w.mbdbRecord(b, rw, hash)
	}
	if s.truncMbdb && len(w.rows) > 0 {
		cut := last + (len(b)-last)/2
		b = b[:cut]
		w.b.Rows = len(w.rows) - 1
		w.b.IndexTruncatedAt = int64(cut)
	}
	return w.writeFile("Manifest.mbdb", b)
}
