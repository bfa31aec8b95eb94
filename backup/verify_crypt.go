package backup

import (
	"context"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mbaudit/mbaudit/backup/keybag"
	"github.com/mbaudit/mbaudit/backup/manifest"
	"github.com/mbaudit/mbaudit/internal/tmpdir"
)

// ErrWrongPassword is matched (errors.Is) by the error Verify returns when
// the password does not unlock a backup's keybag.
var ErrWrongPassword = keybag.ErrWrongPassword

// Password is the backup password given to verify, with the keys derived
// from it. Deriving a key takes seconds (real keybags ask for 10,000,000
// PBKDF2 rounds), so each derivation is kept for keybags with the same salts
// and counts: the dated copies of a backup share one.
//
// The password itself is never printed, logged or put in an error.
type Password struct {
	secret []byte

	mu      sync.Mutex
	derived map[string][]byte
}

// NewPassword wraps a password. The caller should not keep other copies.
func NewPassword(secret []byte) *Password {
	return &Password{secret: secret, derived: map[string][]byte{}}
}

// String hides the password from any %v or %s that meets it by mistake.
func (p *Password) String() string { return "[password]" }

// GoString does the same for %#v.
func (p *Password) GoString() string { return "[password]" }

// Unlock describes the unlocking of one backup's keybag.
type Unlock struct {
	// Derive is how long the key derivation took; 0 when the key of an
	// identical keybag was reused.
	Derive time.Duration
	// Rounds is the keybag's PBKDF2 round count (both steps).
	Rounds int64
}

// problem is something wrong with a backup that unlocking or decrypting
// its index found: a finding for verify, a note for usage.
type problem struct {
	code Code
	msg  string
}

func problemf(c Code, format string, args ...any) *problem {
	return &problem{c, fmt.Sprintf(format, args...)}
}

// unlock derives (or reuses) the key for the backup's keybag and unwraps
// the class keys. A keybag that cannot be used is a problem; a wrong
// password or a cancellation is an error.
func unlock(ctx context.Context, b *Backup, pw *Password, progress func(done, total int64)) (*keybag.Keys, *Unlock, *problem, error) {
	m := b.Manifest
	if m == nil || len(m.BackupKeyBag) == 0 {
		return nil, nil, problemf(KeybagMissing, "the backup is encrypted but Manifest.plist has no BackupKeyBag: it can never be decrypted"), nil
	}
	kb, err := keybag.Parse(m.BackupKeyBag)
	if err != nil {
		return nil, nil, problemf(KeybagMissing, "Manifest.plist's BackupKeyBag cannot be read: %s", shortErr(err)), nil
	}
	cacheKey := kb.CacheKey()
	pw.mu.Lock()
	derived, ok := pw.derived[cacheKey]
	pw.mu.Unlock()
	dp, it := kb.Iterations()
	info := &Unlock{Rounds: int64(dp) + int64(it)}
	if !ok {
		start := time.Now()
		derived, err = kb.DeriveKey(ctx, pw.secret, progress)
		if err != nil {
			return nil, nil, nil, err // cancelled
		}
		info.Derive = time.Since(start)
	}
	keys, err := kb.Unlock(derived)
	if errors.Is(err, keybag.ErrWrongPassword) {
		return nil, nil, nil, fmt.Errorf("%w for %s", ErrWrongPassword, b.DisplayName())
	}
	if err != nil {
		return nil, nil, problemf(KeybagMissing, "Manifest.plist's BackupKeyBag cannot be unlocked: %s", shortErr(err)), nil
	}
	pw.mu.Lock()
	pw.derived[cacheKey] = derived
	pw.mu.Unlock()
	return keys, info, nil, nil
}

// unlock is unlock for the backup being verified: a problem becomes a
// finding.
func (v *verifier) unlock(ctx context.Context) (*keybag.Keys, error) {
	keys, info, prob, err := unlock(ctx, v.b, v.opt.Password, v.opt.Unlocking)
	if prob != nil && !v.b.Has(prob.code) {
		v.b.Add(prob.code, 1, prob.msg)
	}
	v.unlocked = info
	return keys, err
}

// decryptedIndex is an encrypted backup's Manifest.db, decrypted into a
// private temporary folder (never beside the backup). Close removes it.
type decryptedIndex struct {
	Path string
	Keys *keybag.Keys
	Info *Unlock
	dir  string
}

func (d *decryptedIndex) Close() {
	if d != nil && d.dir != "" {
		os.RemoveAll(d.dir)
		d.dir = ""
	}
}

// decryptIndex unlocks the backup's keybag with the password and decrypts
// its index. What is wrong with the backup is a problem (and a nil index);
// a wrong password, a cancellation or a temporary folder that cannot be
// written is an error.
func decryptIndex(ctx context.Context, b *Backup, pw *Password, progress func(done, total int64)) (*decryptedIndex, *problem, error) {
	keys, info, prob, err := unlock(ctx, b, pw, progress)
	if err != nil || prob != nil {
		return nil, prob, err
	}
	key, err := keys.UnwrapKey(b.Manifest.ManifestKey)
	if err != nil {
		return nil, problemf(KeybagMissing, "Manifest.plist's ManifestKey does not unwrap with its class key: %s", shortErr(err)), nil
	}
	dir, err := tmpdir.Private()
	if err != nil {
		return nil, nil, fmt.Errorf("cannot make a private temporary folder for the decrypted index: %w", err)
	}
	d := &decryptedIndex{Path: filepath.Join(dir, "Manifest.db"), Keys: keys, Info: info, dir: dir}
	if err := decryptFile(ctx, filepath.Join(b.Path, "Manifest.db"), d.Path, key); err != nil {
		d.Close()
		switch {
		case ctx.Err() != nil:
			return nil, nil, ctx.Err()
		case errors.Is(err, keybag.ErrPadding):
			return nil, problemf(ManifestDBInvalid, "Manifest.db does not decrypt: %s", shortErr(err)), nil
		case errors.Is(err, errTempWrite):
			return nil, nil, err
		default:
			return nil, problemf(BackupUnreadable, "could not read Manifest.db: %s", describeIOError(err)), nil
		}
	}
	return d, nil, nil
}

// verifyEncryptedDB unlocks an encrypted index with the password, decrypts
// it and runs every check of a plain backup on it.
func (v *verifier) verifyEncryptedDB(ctx context.Context) error {
	if v.b.Has(KeybagMissing) {
		return v.verifyOpaque(ctx)
	}
	d, prob, err := decryptIndex(ctx, v.b, v.opt.Password, v.opt.Unlocking)
	if prob != nil {
		v.b.Add(prob.code, 1, prob.msg)
		if prob.code == KeybagMissing {
			return v.verifyOpaque(ctx)
		}
		return nil
	}
	if errors.Is(err, ErrWrongPassword) {
		// The blobs can still be counted and measured; the caller reports
		// the password error.
		if oerr := v.verifyOpaque(ctx); oerr != nil {
			return oerr
		}
		return err
	}
	if err != nil {
		return err
	}
	defer d.Close()
	v.b.drop(ManifestEncrypted)
	v.keys, v.unlocked, v.dbPath = d.Keys, d.Info, d.Path
	return v.verifyDB(ctx)
}

var errTempWrite = errors.New("cannot write the decrypted index to the temporary folder")

// decryptFile decrypts src into a new file dst (mode 0600), checking the
// context between chunks.
func decryptFile(ctx context.Context, src, dst string, key []byte) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("%w: %v", errTempWrite, err)
	}
	buf := make([]byte, 1<<20)
	_, err = keybag.Decrypt(&tempWriter{out}, ctxReader{ctx, in}, key, buf)
	if cerr := out.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%w: %v", errTempWrite, cerr)
	}
	return err
}

// tempWriter marks write errors (a full temporary disk) apart from read
// errors of the backup.
type tempWriter struct{ f *os.File }

func (w *tempWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil {
		err = fmt.Errorf("%w: %v", errTempWrite, err)
	}
	return n, err
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// deepJob is one blob to decrypt.
type deepJob struct {
	l   listed
	key [44]byte
	n   int // length of key
}

// deepDecrypt decrypts every listed blob that is on disk, in parallel and
// without writing a byte of plaintext: the key comes from the record, the
// padding must decode and the plaintext must be as long as the record says.
// rows feeds the records (a second pass over the index, in fileID order, so
// that no key is kept in memory beyond the queue).
func (v *verifier) deepDecrypt(ctx context.Context, rows func(ctx context.Context, job func(deepJob) error) error) error {
	total, totalBytes := v.deepTotals()
	jobs := v.opt.Jobs
	if jobs <= 0 {
		jobs = DefaultJobs()
	}
	g, gctx := errgroup.WithContext(ctx)
	queue := make(chan deepJob, 256)
	for range jobs {
		g.Go(func() error {
			buf := make([]byte, 256<<10)
			for j := range queue {
				if gctx.Err() != nil {
					return gctx.Err()
				}
				v.decryptBlob(j, buf)
				v.blobDone(total, totalBytes)
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(queue)
		return rows(gctx, func(j deepJob) error {
			select {
			case queue <- j:
				return nil
			case <-gctx.Done():
				return gctx.Err()
			}
		})
	})
	err := g.Wait()
	v.counts.BytesRead = v.doneB.Load()
	return err
}

// deepTotals counts the files and bytes --deep will read, for progress.
func (v *verifier) deepTotals() (files, bytes int64) {
	for p := range v.buckets {
		files += int64(len(v.buckets[p]))
		for _, l := range v.buckets[p] {
			if l.size > 0 {
				bytes += l.size
			}
		}
	}
	return files, bytes
}

// decryptBlob decrypts one blob to nowhere and notes what is wrong with it.
// Lengths the merge already judged (not whole blocks, or not the padded
// size) are not counted twice.
func (v *verifier) decryptBlob(j deepJob, buf []byte) {
	f := v.openBlob(j.l.id)
	if f == nil {
		return
	}
	defer f.Close()
	length := int64(-1)
	if st, ok := f.(interface{ Stat() (fs.FileInfo, error) }); ok {
		if fi, err := st.Stat(); err == nil {
			length = fi.Size()
		}
	}
	if length >= 0 && length%16 != 0 {
		return // already file-padding-invalid
	}
	key, err := v.keys.UnwrapKey(j.key[:j.n])
	if err != nil {
		v.note(RecordInvalid, j.l.id)
		return
	}
	var r io.Reader = f
	var h hash.Hash
	want, hasDigest := v.digests[j.l.id]
	if hasDigest {
		h = sha1.New()
		r = io.TeeReader(f, h)
	}
	counted := &countingReader{r: r}
	n, err := keybag.Decrypt(io.Discard, counted, key, buf)
	v.doneB.Add(counted.n)
	// A blob the merge found of the wrong length (file-size-mismatch) is
	// not judged again by its padding: one defect, one finding.
	lengthOK := j.l.size < 0 || length < 0 || length == (j.l.size/16+1)*16
	switch {
	case errors.Is(err, keybag.ErrPadding):
		if lengthOK {
			v.note(FilePaddingInvalid, j.l.id)
		}
		return
	case err != nil:
		v.note(FileUnreadable, j.l.id)
		return
	}
	if hasDigest && [20]byte(h.Sum(nil)) != want {
		v.note(FileDigestMismatch, j.l.id)
	}
	// A blob of the padded size whose padding says another length.
	if j.l.size >= 0 && lengthOK && n != j.l.size {
		v.note(FileSizeMismatch, j.l.id)
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// dbDeepRows feeds deepDecrypt from a second pass over Manifest.db.
func (v *verifier) dbDeepRows(db *manifest.DB) func(ctx context.Context, job func(deepJob) error) error {
	return func(ctx context.Context, job func(deepJob) error) error {
		return db.Scan(ctx, func(r *manifest.Row) error {
			if r.FlagsNull || r.Flags != 1 || r.TypeError() != nil {
				return nil
			}
			id, ok := parseFileID(r.FileID)
			if !ok {
				return nil
			}
			var fi manifest.FileInfo
			if manifest.ReadMBFile(r.File, &fi) != nil {
				return nil // already record-invalid
			}
			j := deepJob{l: listed{id: id, size: -1}}
			if fi.HasSize {
				j.l.size = fi.Size
			}
			if !v.keyFits(&j, fi.EncryptionKey, id) {
				return nil
			}
			return job(j)
		})
	}
}

// mbdbDeepRows feeds deepDecrypt from a second pass over Manifest.mbdb.
func (v *verifier) mbdbDeepRows(path string) func(ctx context.Context, job func(deepJob) error) error {
	return func(ctx context.Context, job func(deepJob) error) error {
		return scanMbdbFile(ctx, path, func(r *manifest.MbdbRecord) error {
			if r.Mode&0xF000 != 0x8000 {
				return nil
			}
			id := fileIDOf([]byte(r.Domain), []byte(r.Path))
			j := deepJob{l: listed{id: id, size: int64(r.Size)}}
			if j.l.size < 0 {
				j.l.size = -1
			}
			if !v.keyFits(&j, r.EncryptionKey, id) {
				return nil
			}
			// As iphone-dataprotection reads them, the record's own class
			// field names the class key.
			binary.LittleEndian.PutUint32(j.key[:4], uint32(r.ProtectionClass))
			return job(j)
		})
	}
}

// keyFits copies a record's wrapped key into the job; a record of an
// encrypted backup without a usable key is record-invalid.
func (v *verifier) keyFits(j *deepJob, key []byte, id [20]byte) bool {
	if len(key) != 44 {
		v.note(RecordInvalid, id)
		return false
	}
	j.n = copy(j.key[:], key)
	return true
}

// drop removes a finding.
func (b *Backup) drop(c Code) {
	for i := range b.Findings {
		if b.Findings[i].Code == c {
			b.Findings = append(b.Findings[:i], b.Findings[i+1:]...)
			return
		}
	}
}
