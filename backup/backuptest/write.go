package backuptest

import (
	"bytes"
	"context"
	"crypto/sha1"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"

	_ "modernc.org/sqlite" // LeftoverWAL lets real SQLite write the WAL
)

// fillRandom fills b with the ChaCha8 stream of key: the same key always
// gives the same bytes, and a longer b extends a shorter one.
func fillRandom(b []byte, key uint64) {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], key)
	binary.LittleEndian.PutUint64(seed[8:], key^0x5deece66d)
	c := rand.NewChaCha8(seed)
	_, _ = c.Read(b)
}

// Keys that keep the different random streams of one row apart.
const (
	streamCipher   = 0xc1f3e5d7b9a2c4e6
	streamDigest   = 0xd16e57d16e57d16e
	streamKey      = 0x6b65796b65796b65
	streamSnapshot = 0x736e617073686f74
)

// write puts the planned backup on disk.
func (w *writer) write() error {
	s := w.s
	if !s.legacy {
		for i := range 256 {
			dir := filepath.Join(w.b.Path, fmt.Sprintf("%02x", i))
			if err := os.Mkdir(dir, 0o755); err != nil {
				return err
			}
			w.mtimes = append(w.mtimes, dir)
		}
	}
	var hashes [][20]byte
	if s.legacy {
		hashes = make([][20]byte, len(w.rows))
	}
	blobErr := make(chan error, 1)
	go func() { blobErr <- w.writeBlobs(hashes) }()
	var err error
	if !s.legacy {
		err = w.writeIndex()
	}
	err = errors.Join(err, <-blobErr)
	if err != nil {
		return err
	}
	if s.legacy && !s.noIndex {
		if err := w.writeMbdb(hashes); err != nil {
			return err
		}
	}
	plists := []struct {
		which PlistName
		name  string
		p     *pdict
	}{
		{InfoPlist, "Info.plist", w.infoPlist()},
		{ManifestPlist, "Manifest.plist", w.manifestPlist(w.startDate())},
		{StatusPlist, "Status.plist", w.statusPlist()},
	}
	for _, p := range plists {
		data, ok := w.render(p.which, p.p)
		if !ok {
			continue
		}
		if err := w.writeFile(p.name, data); err != nil {
			return err
		}
	}
	if err := w.writeSnapshot(); err != nil {
		return err
	}
	if err := w.writeOrphans(); err != nil {
		return err
	}
	for _, p := range append(w.mtimes, w.b.Path) {
		if err := os.Chtimes(p, w.modTime, w.modTime); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes a file at name (slash-separated, relative to the backup).
func (w *writer) writeFile(name string, data []byte) error {
	p := filepath.Join(w.b.Path, filepath.FromSlash(name))
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return err
	}
	w.mtimes = append(w.mtimes, p)
	return nil
}

// blobRel is where the blob named id lives, relative to the backup folder.
func (w *writer) blobRel(id string) string {
	if w.s.legacy {
		return id
	}
	return id[:2] + "/" + id
}

// content returns the bytes of row rw's blob, n bytes long, in buf.
func (w *writer) content(buf []byte, rw *row, n int64) []byte {
	if int64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if rw.fileKey == nil {
		fillRandom(buf, rw.key)
		return buf
	}
	// The plaintext is what a plain backup would hold; the blob its
	// ciphertext, cut or lengthened (with random bytes) to n.
	plain := make([]byte, rw.size)
	fillRandom(plain, rw.key)
	ct := Encrypt(rw.fileKey, plain)
	if rw.altered {
		ct[len(ct)-17] ^= 0x80 // the last byte of the padding decodes to 0x80 more
	}
	if copy(buf, ct) < len(buf) {
		fillRandom(buf[len(ct):], rw.key^streamCipher)
	}
	return buf
}

// writeBlobs writes every blob, a few at a time. With hashes (legacy) it
// also records the SHA-1 of each file's blob, or of the blob it should have.
func (w *writer) writeBlobs(hashes [][20]byte) error {
	var from map[string]File
	if w.s.linkFrom != nil {
		from = make(map[string]File, len(w.s.linkFrom.Files))
		for _, f := range w.s.linkFrom.Files {
			from[f.FileID] = f
		}
	}
	jobs := make(chan int, 256)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	var links atomic.Int64
	// The work is mostly the kernel's (creating inodes); two writers keep
	// two cores busy, more did not help.
	workers := min(max(2, runtime.GOMAXPROCS(0)), 4)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf, other []byte
			for i := range jobs {
				rw := &w.rows[i]
				n := rw.blob
				if n < 0 {
					if hashes != nil {
						hashes[i] = sha1.Sum(w.content(buf, rw, rw.size))
					}
					continue
				}
				buf = w.content(buf, rw, n)
				if hashes != nil {
					hashes[i] = sha1.Sum(buf)
				}
				rel := w.blobRel(rw.blobID)
				p := filepath.Join(w.b.Path, filepath.FromSlash(rel))
				linked := false
				if f, ok := from[rw.blobID]; ok && f.Blob == n {
					src := filepath.Join(w.s.linkFrom.Path, filepath.FromSlash(w.s.linkFrom.blobRel(rw.blobID)))
					if other, ok = sameContent(src, buf, other); ok {
						if err := os.Link(src, p); err == nil {
							linked = true
							links.Add(1)
						}
					}
				}
				var err error
				if !linked { // a link keeps the times of the file it shares
					err = writeBlobFile(p, buf, w.modTime)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i, rw := range w.rows {
		if rw.kind == kindFile && (rw.blob >= 0 || hashes != nil) {
			jobs <- i
		}
	}
	close(jobs)
	wg.Wait()
	w.b.Links = int(links.Load())
	return firstErr
}

// blobRel is where a blob of b lives, relative to b.Path.
func (b *Backup) blobRel(id string) string {
	if b.Legacy {
		return id
	}
	return id[:2] + "/" + id
}

func sameContent(path string, want, buf []byte) ([]byte, bool) {
	f, err := os.Open(path)
	if err != nil {
		return buf, false
	}
	defer f.Close()
	if cap(buf) < len(want)+1 {
		buf = make([]byte, len(want)+1)
	}
	buf = buf[:len(want)+1]
	n, _ := io.ReadFull(f, buf)
	return buf, n == len(want) && bytes.Equal(buf[:n], want)
}

// archive returns the archived MBFile of a row (valid until the next call).
func (w *writer) archive(e *mbEncoder, rw *row) []byte {
	f := mbFile{
		RelativePath: rw.path, Mode: rw.mode, InodeNumber: rw.inode, UserID: rw.uid, GroupID: rw.gid,
		LastModified: rw.mtime, LastStatusChange: rw.ctime, Birth: rw.birth, Size: rw.size,
		NoSize: rw.noSize, ProtectionClass: rw.pclass, Flags: rw.mbFlags, Root: w.s.rootIndex,
	}
	if rw.kind == kindSymlink && rw.hasTarget {
		f.Target, f.HasTarget = rw.target, true
	}
	if rw.kind == kindFile {
		if rw.digest {
			f.Digest = make([]byte, 20)
			fillRandom(f.Digest, rw.key^streamDigest)
		}
		if w.keyEnc {
			f.EncryptionKey = encryptionKey(rw)
		}
	}
	if rw.xattr {
		f.ExtendedAttributes = w.xattr
	}
	out := e.archive(&f)
	if rw.undecodable {
		out = out[:len(out)/2]
	}
	return out
}

// encryptionKey is a file's wrapped key: its protection class (little
// endian) and 40 bytes of wrapped key.
func encryptionKey(rw *row) []byte {
	if rw.wrapped != nil {
		return rw.wrapped
	}
	k := make([]byte, 44)
	binary.LittleEndian.PutUint32(k, uint32(rw.pclass))
	fillRandom(k[4:], rw.key^streamKey)
	return k
}

// writeIndex writes Manifest.db (iOS 10 and later).
func (w *writer) writeIndex() error {
	s := w.s
	dst := filepath.Join(w.b.Path, "Manifest.db")
	switch {
	case s.noIndex:
		return nil
	case s.indexDir:
		w.mtimes = append(w.mtimes, dst)
		return os.Mkdir(dst, 0o755)
	case s.garbageIdx:
		r := rand.New(rand.NewPCG(uint64(s.seed), 0x67617262))
		n := dbPageSize*max(2, len(w.rows)*600/dbPageSize) + 1 + r.IntN(15)
		g := make([]byte, n)
		fillRandom(g, r.Uint64())
		return w.writeFile("Manifest.db", g)
	}
	dbPath := dst
	var tmp string
	if s.leftover {
		var err error
		if tmp, err = os.MkdirTemp("", "backuptest-wal-"); err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dbPath = filepath.Join(tmp, "Manifest.db")
	}
	layout := dbLayout{noFiles: s.noFiles, wal: true}
	for c, col := range filesColumns {
		if col.name == s.dropCol {
			layout.drop[c] = true
		}
	}
	dw, err := newDBWriter(dbPath, layout, w.walFrom)
	if err != nil {
		return err
	}
	var enc mbEncoder
	for i := range w.rows[:w.walFrom] {
		rw := &w.rows[i]
		if err := dw.add(&dbRow{rw.fileID, rw.domain, rw.path, rw.flags, w.archive(&enc, rw)}); err != nil {
			dw.f.Close()
			return err
		}
	}
	if err := dw.close(); err != nil {
		return err
	}
	switch {
	case s.corruptIdx:
		if err := w.corruptIndex(dbPath, dw.pages); err != nil {
			return err
		}
	case s.leftover:
		if err := w.addWAL(dbPath, &enc); err != nil {
			return err
		}
	case w.dataEnc:
		plain, err := os.ReadFile(dbPath)
		if err != nil {
			return err
		}
		return w.writeFile("Manifest.db", Encrypt(w.manKey, plain))
	}
	w.mtimes = append(w.mtimes, dst)
	return nil
}

// corruptIndex overwrites cell pointers in one page of each of two indexes
// with offsets past the end of the page.
func (w *writer) corruptIndex(dbPath string, pages map[string][]uint32) error {
	f, err := os.OpenFile(dbPath, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	r := rand.New(rand.NewPCG(uint64(w.s.seed), 0x636f7272757074))
	for _, name := range []string{"FilesDomainIdx", "FilesRelativePathIdx"} {
		ps := pages[name]
		if len(ps) == 0 {
			continue
		}
		p := ps[r.IntN(len(ps))]
		page := make([]byte, dbPageSize)
		if _, err := f.ReadAt(page, int64(p-1)*dbPageSize); err != nil {
			return err
		}
		hdr := 8
		if page[0] == pageInnerIndex {
			hdr = 12
		}
		n := int(binary.BigEndian.Uint16(page[3:]))
		for i := range max(1, min(n, 4)) {
			binary.BigEndian.PutUint16(page[hdr+2*i:], 0xf000|uint16(r.IntN(0x1000)))
		}
		if _, err := f.WriteAt(page, int64(p-1)*dbPageSize); err != nil {
			return err
		}
		w.b.CorruptPages = append(w.b.CorruptPages, int(p))
	}
	return f.Close()
}

// addWAL lets SQLite itself add the last rows in WAL mode, then copies the
// database and its -wal, as a copy taken while the device had it open.
func (w *writer) addWAL(dbPath string, enc *mbEncoder) error {
	db, err := sql.Open("sqlite", "file:"+dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var mode string
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if mode != "wal" {
		return fmt.Errorf("journal mode %q, want wal", mode)
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA wal_autocheckpoint=0"); err != nil {
		return err
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	st, err := tx.PrepareContext(ctx, "INSERT INTO Files (fileID, domain, relativePath, flags, file) VALUES (?, ?, ?, ?, ?)")
	if err != nil {
		tx.Rollback()
		return err
	}
	for i := w.walFrom; i < len(w.rows); i++ {
		rw := &w.rows[i]
		if _, err := st.ExecContext(ctx, rw.fileID, rw.domain, rw.path, rw.flags, w.archive(enc, rw)); err != nil {
			tx.Rollback()
			return err
		}
	}
	st.Close()
	if err := tx.Commit(); err != nil {
		return err
	}
	for _, name := range []string{"Manifest.db", "Manifest.db-wal"} {
		data, err := os.ReadFile(filepath.Join(filepath.Dir(dbPath), name))
		if err != nil {
			return err
		}
		if name == "Manifest.db-wal" {
			if err := resaltWAL(data, uint32(w.s.seed), uint32(w.s.seed>>32)^0x5a17); err != nil {
				return err
			}
		}
		if err := w.writeFile(name, data); err != nil {
			return err
		}
	}
	return nil
}

// writeSnapshot leaves the Snapshot/ folder of an interrupted backup.
func (w *writer) writeSnapshot() error {
	s := w.s
	if s.snapDir <= 0 {
		return nil
	}
	snap := filepath.Join(w.b.Path, "Snapshot")
	if err := os.Mkdir(snap, 0o755); err != nil {
		return err
	}
	w.mtimes = append(w.mtimes, snap)
	if !s.legacy {
		for i := range 256 {
			dir := filepath.Join(snap, fmt.Sprintf("%02x", i))
			if err := os.Mkdir(dir, 0o755); err != nil {
				return err
			}
			w.mtimes = append(w.mtimes, dir)
		}
	}
	man := binaryPlist(w.manifestPlist(w.modTime))
	if err := w.writeFile("Snapshot/Manifest.plist", man); err != nil {
		return err
	}
	w.b.SnapshotBytes += int64(len(man))
	r := rand.New(rand.NewPCG(uint64(s.seed), streamSnapshot))
	var ids []string
	for _, f := range w.b.Files {
		if len(f.FileID) == 40 && isHex(f.FileID) {
			ids = append(ids, f.FileID)
		}
	}
	r.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	for i := range s.snapDir {
		var id string
		if i < len(ids) {
			id = ids[i] // a new version of a listed file
		} else {
			id = sha1Hex("HomeDomain", fmt.Sprintf("Library/SMS/Attachments/new/%d.jpeg", i))
		}
		data := make([]byte, r.IntN(4096))
		fillRandom(data, r.Uint64())
		rel := path.Join("Snapshot", w.blobRel(id))
		if err := w.writeFile(rel, data); err != nil {
			return err
		}
		w.b.SnapshotBlobs = append(w.b.SnapshotBlobs, rel)
		w.b.SnapshotBytes += int64(len(data))
	}
	return nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// writeOrphans adds blobs no row lists.
func (w *writer) writeOrphans() error {
	r := rand.New(rand.NewPCG(uint64(w.s.seed), 0x6f727068616e))
	for i := range w.s.orphans {
		id := sha1Hex("HomeDomain", fmt.Sprintf("Library/Caches/com.apple.mobilesafari/Orphan-%d.db", i))
		data := make([]byte, 1+r.IntN(4096))
		fillRandom(data, r.Uint64())
		rel := w.blobRel(id)
		if err := w.writeFile(rel, data); err != nil {
			return err
		}
		w.b.Orphans = append(w.b.Orphans, rel)
		w.b.OrphanBytes += int64(len(data))
	}
	return nil
}

// resaltWAL replaces the random salts SQLite put in a WAL file with fixed
// ones and recomputes the checksums, so the same options give the same bytes.
func resaltWAL(wal []byte, salt1, salt2 uint32) error {
	const hdr, frameHdr = 32, 24
	if len(wal) < hdr {
		return fmt.Errorf("WAL of %d bytes", len(wal))
	}
	magic := binary.BigEndian.Uint32(wal)
	if magic&^1 != 0x377f0682 {
		return fmt.Errorf("WAL magic %#x", magic)
	}
	var order binary.ByteOrder = binary.LittleEndian
	if magic&1 == 1 {
		order = binary.BigEndian
	}
	sum := func(s1, s2 uint32, b []byte) (uint32, uint32) {
		for i := 0; i+8 <= len(b); i += 8 {
			s1 += order.Uint32(b[i:]) + s2
			s2 += order.Uint32(b[i+4:]) + s1
		}
		return s1, s2
	}
	pageSize := int(binary.BigEndian.Uint32(wal[8:]))
	binary.BigEndian.PutUint32(wal[16:], salt1)
	binary.BigEndian.PutUint32(wal[20:], salt2)
	s1, s2 := sum(0, 0, wal[:24])
	binary.BigEndian.PutUint32(wal[24:], s1)
	binary.BigEndian.PutUint32(wal[28:], s2)
	for off := hdr; off+frameHdr+pageSize <= len(wal); off += frameHdr + pageSize {
		f := wal[off : off+frameHdr+pageSize]
		binary.BigEndian.PutUint32(f[8:], salt1)
		binary.BigEndian.PutUint32(f[12:], salt2)
		s1, s2 = sum(s1, s2, f[:8])
		s1, s2 = sum(s1, s2, f[frameHdr:])
		binary.BigEndian.PutUint32(f[16:], s1)
		binary.BigEndian.PutUint32(f[20:], s2)
	}
	return nil
}
