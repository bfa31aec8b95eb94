package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// The archive formats.
const (
	FormatTarZst = "tar.zst"
	FormatTarGz  = "tar.gz"
)

// ArchiveOptions tune Archive.
type ArchiveOptions struct {
	Format string // FormatTarZst (default) or FormatTarGz
	Now    time.Time
	// Progress, when set, is told how the work goes: while the backup is
	// written into the archive, then while the archive is read back.
	Progress func(ArchiveProgress)
	// FileDelay is a pause after each file written into the archive.
	// Test-only (crash tests set it through MBAUDIT_TEST_STEP_DELAY to kill
	// the process while an archive is written).
	FileDelay time.Duration
	// wrap stands in for the archive file's writer in tests (a disk that
	// fills up after N bytes).
	wrap func(io.Writer) io.Writer
}

// The steps of Archive that ArchiveProgress names.
const (
	StepWriting     = "writing"
	StepReadingBack = "reading back"
)

// ArchiveProgress is how far Archive got in one step: files and bytes of
// file content done, against the backup's totals (Usage.Files and
// Usage.ApparentBytes; 0 when unknown).
type ArchiveProgress struct {
	Step       string // StepWriting or StepReadingBack
	Files      int64
	TotalFiles int64
	Bytes      int64
	TotalBytes int64
}

// archiveTempPattern names the temporary archive: it carries the writer's
// pid and host, so that a later run can tell a leftover of a dead writer
// (removed by CleanArchiveTemps) from an archive being written now.
func archiveTempPattern() string {
	return fmt.Sprintf("%sarchive-%d@%s-*.tmp", TrashPrefix, os.Getpid(), tempHost())
}

// tempHost is this host's name, made safe for a file name.
func tempHost() string {
	h, _ := os.Hostname()
	if h == "" {
		h = "unknown"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, h)
}

// parseArchiveTemp reads the writer's pid and host from a temporary
// archive's name (or its sidecar's, name + ".json"). ok is false for a name
// that is not a temporary archive; pid is 0 when the name carries none (made
// by an older mbaudit).
func parseArchiveTemp(name string) (pid int, host string, ok bool) {
	rest, found := strings.CutPrefix(name, TrashPrefix+"archive-")
	if !found {
		return 0, "", false
	}
	rest = strings.TrimSuffix(rest, ".json")
	rest, found = strings.CutSuffix(rest, ".tmp")
	if !found {
		return 0, "", false
	}
	at := strings.IndexByte(rest, '@')
	dash := strings.LastIndexByte(rest, '-')
	if at <= 0 || dash < at {
		return 0, "", true
	}
	n, err := strconv.Atoi(rest[:at])
	if err != nil || n <= 0 {
		return 0, "", true
	}
	return n, rest[at+1 : dash], true
}

// LeftTemp is a temporary archive file CleanArchiveTemps found and left
// alone because it cannot tell whether its writer still runs.
type LeftTemp struct {
	Path string
	PID  int    // 0: the name carries no pid
	Host string // the writer's host, when the name carries one
}

// CleanArchiveTemps removes from dir the temporary archives (and their
// sidecars) whose writer is dead: a run killed while it wrote them (say by
// SIGKILL) leaves them behind. A file whose writer runs on this host now is
// left alone silently; one whose name carries no pid or another host is left
// alone and returned in left. removed holds the paths removed.
func CleanArchiveTemps(dir string) (removed []string, left []LeftTemp, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	host := tempHost()
	for _, e := range entries {
		pid, h, ok := parseArchiveTemp(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if pid == 0 || h != host {
			left = append(left, LeftTemp{Path: p, PID: pid, Host: h})
			continue
		}
		if processAlive(pid) {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return removed, left, fmt.Errorf("removing %s: %w", p, err)
		}
		removed = append(removed, p)
	}
	if len(removed) > 0 {
		syncDir(dir)
	}
	return removed, left, nil
}

// processAlive says whether a process with this pid runs on this host (one
// of another user counts).
func processAlive(pid int) bool {
	if pid == os.Getpid() {
		return true
	}
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// Sidecar is the small JSON file written beside an archive.
type Sidecar struct {
	ID            string     `json:"id"`
	UDID          string     `json:"udid"`
	DeviceName    string     `json:"device_name"`
	LastBackup    *time.Time `json:"last_backup"`
	ArchivedAt    time.Time  `json:"archived_at"`
	Format        string     `json:"format"`
	Files         int64      `json:"files"`
	SourceBytes   int64      `json:"source_bytes"`
	ArchiveBytes  int64      `json:"archive_bytes"`
	ArchiveSHA256 string     `json:"archive_sha256"`
}

// entrySum is what the read-back compares: kind, size and content hash of
// each entry, by name.
type entrySum struct {
	kind   byte
	size   int64
	sum    [32]byte
	target string
}

// Archive writes the backup as DIR/<id>.tar.zst (or .tar.gz) holding one
// top-level folder <id>/, with the sidecar <archive>.json beside it. The
// archive is written under a temporary name (carrying the writer's pid and
// host, see CleanArchiveTemps), synced, read back and compared
// entry by entry (names, sizes, SHA-256) with what was read from the source,
// and only then renamed into place. On any failure the temporary files are
// removed; the source is only ever read.
func Archive(ctx context.Context, b *Backup, dir string, opt ArchiveOptions) (*Sidecar, string, error) {
	if opt.Format == "" {
		opt.Format = FormatTarZst
	}
	if opt.Format != FormatTarZst && opt.Format != FormatTarGz {
		return nil, "", fmt.Errorf("unknown archive format %q", opt.Format)
	}
	if b.Symlink {
		return nil, "", errors.New("a symbolic link: not archived")
	}
	final := filepath.Join(dir, b.ID+"."+opt.Format)
	if _, err := os.Lstat(final); err == nil {
		// An earlier run that was interrupted after the rename: accept the
		// archive only if it holds exactly this backup.
		return resumeArchive(ctx, b, final, opt)
	}
	if _, err := os.Lstat(final + ".json"); err == nil {
		return nil, "", fmt.Errorf("%s.json already exists", final)
	}
	tmp, err := os.CreateTemp(dir, archiveTempPattern())
	if err != nil {
		return nil, "", fmt.Errorf("creating the archive in %s: %w", dir, err)
	}
	tmpSide := tmp.Name() + ".json"
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
			os.Remove(tmpSide)
		}
	}()
	side := &Sidecar{ID: b.ID, UDID: b.UDID, DeviceName: b.DeviceName(), Format: opt.Format, ArchivedAt: opt.Now.UTC()}
	if lb := b.LastBackup(); !lb.IsZero() {
		u := lb.UTC()
		side.LastBackup = &u
	}
	sums, err := writeArchive(ctx, b, tmp, opt, side)
	if err != nil {
		return nil, "", fmt.Errorf("writing %s: %w", final, err)
	}
	if err := tmp.Sync(); err != nil {
		return nil, "", fmt.Errorf("writing %s: %w", final, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, "", fmt.Errorf("writing %s: %w", final, err)
	}
	// Read back what is on disk now, not what we meant to write.
	got, hash, size, err := readArchive(ctx, tmp.Name(), opt.Format, b.ID, nil, readProgress(b, opt))
	if err != nil {
		return nil, "", fmt.Errorf("reading back %s: %w", final, err)
	}
	if diff := compareSums(sums, got); diff != "" {
		return nil, "", fmt.Errorf("reading back %s: %s", final, diff)
	}
	side.ArchiveBytes, side.ArchiveSHA256 = size, hash
	data, _ := json.MarshalIndent(side, "", "  ")
	if err := writeSynced(tmpSide, append(data, '\n')); err != nil {
		return nil, "", fmt.Errorf("writing %s.json: %w", final, err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return nil, "", err
	}
	if err := os.Rename(tmpSide, final+".json"); err != nil {
		return nil, "", err
	}
	syncDir(dir)
	ok = true
	return side, final, nil
}

// resumeArchive checks an archive already in place against the backup
// (names, sizes, SHA-256 of every file) and writes its sidecar when it is
// missing; an archive that holds anything else is an error.
func resumeArchive(ctx context.Context, b *Backup, final string, opt ArchiveOptions) (*Sidecar, string, error) {
	side := &Sidecar{ID: b.ID, UDID: b.UDID, DeviceName: b.DeviceName(), Format: opt.Format, ArchivedAt: opt.Now.UTC()}
	if lb := b.LastBackup(); !lb.IsZero() {
		u := lb.UTC()
		side.LastBackup = &u
	}
	want, err := writeArchive(ctx, b, io.Discard, ArchiveOptions{Format: opt.Format, Progress: opt.Progress}, side)
	if err != nil {
		return nil, "", fmt.Errorf("reading %s: %w", b.Path, err)
	}
	got, hash, size, err := readArchive(ctx, final, opt.Format, b.ID, nil, readProgress(b, opt))
	if err != nil {
		return nil, "", fmt.Errorf("%s already exists and cannot be read: %w", final, err)
	}
	if diff := compareSums(want, got); diff != "" {
		return nil, "", fmt.Errorf("%s already exists and holds something else (%s)", final, diff)
	}
	side.ArchiveBytes, side.ArchiveSHA256 = size, hash
	if data, err := os.ReadFile(final + ".json"); err == nil {
		var old Sidecar
		if json.Unmarshal(data, &old) == nil && old.ArchiveSHA256 == hash {
			return &old, final, nil
		}
		return nil, "", fmt.Errorf("%s.json does not match the archive", final)
	}
	tmp := filepath.Join(filepath.Dir(final), TrashPrefix+"sidecar-"+b.ID+".tmp")
	os.Remove(tmp)
	data, _ := json.MarshalIndent(side, "", "  ")
	if err := writeSynced(tmp, append(data, '\n')); err != nil {
		os.Remove(tmp)
		return nil, "", err
	}
	if err := os.Rename(tmp, final+".json"); err != nil {
		os.Remove(tmp)
		return nil, "", err
	}
	syncDir(filepath.Dir(final))
	return side, final, nil
}

func writeSynced(p string, data []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

func writeArchive(ctx context.Context, b *Backup, w io.Writer, opt ArchiveOptions, side *Sidecar) (map[string]entrySum, error) {
	if opt.wrap != nil {
		w = opt.wrap(w)
	}
	var comp io.WriteCloser
	if opt.Format == FormatTarGz {
		comp = gzip.NewWriter(w)
	} else {
		zw, err := zstd.NewWriter(w)
		if err != nil {
			return nil, err
		}
		comp = zw
	}
	tw := tar.NewWriter(comp)
	sums := map[string]entrySum{}
	prog := stepProgress(b, opt.Progress, StepWriting)
	err := filepath.WalkDir(b.Path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(b.Path, p)
		name := path.Join(b.ID, filepath.ToSlash(rel))
		var target string
		if fi.Mode()&fs.ModeSymlink != 0 {
			if target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, target)
		if err != nil {
			return err
		}
		hdr.Name, hdr.Format = name, tar.FormatPAX
		hdr.Uname, hdr.Gname = "", ""
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		e := entrySum{kind: hdr.Typeflag, target: target}
		if fi.Mode().IsRegular() {
			src, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			n, err := io.Copy(tw, io.TeeReader(src, progressWriter{h, prog}))
			src.Close()
			if err != nil {
				return err
			}
			if n != fi.Size() {
				return fmt.Errorf("%s changed while it was archived", p)
			}
			e.size = n
			copy(e.sum[:], h.Sum(nil))
			side.Files++
			side.SourceBytes += n
			prog.file()
			if opt.FileDelay > 0 {
				select {
				case <-time.After(opt.FileDelay):
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		sums[hdr.Name] = e
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := comp.Close(); err != nil {
		return nil, err
	}
	return sums, nil
}

// readArchive reads an archive to its end and returns each entry's sum, the
// archive file's SHA-256 and length. Every entry must lie inside <id>/.
// With extract set, it is called for each entry with its reader.
// prog, when not nil, is told of each file's bytes as they are read.
func readArchive(ctx context.Context, p, format, id string, extract func(*tar.Header, io.Reader) error, prog *progressCounter) (map[string]entrySum, string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, "", 0, err
	}
	defer f.Close()
	fh := sha256.New()
	counted := &countWriter{w: fh}
	src := io.TeeReader(f, counted)
	var r io.Reader
	if format == FormatTarGz {
		gr, err := gzip.NewReader(src)
		if err != nil {
			return nil, "", 0, err
		}
		defer gr.Close()
		r = gr
	} else {
		zr, err := zstd.NewReader(src)
		if err != nil {
			return nil, "", 0, err
		}
		defer zr.Close()
		r = zr
	}
	tr := tar.NewReader(r)
	sums := map[string]entrySum{}
	for {
		if err := ctx.Err(); err != nil {
			return nil, "", 0, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, "", 0, err
		}
		if err := checkEntry(hdr, id); err != nil {
			return nil, "", 0, err
		}
		e := entrySum{kind: hdr.Typeflag, target: hdr.Linkname}
		if hdr.Typeflag == tar.TypeReg {
			h := sha256.New()
			var body io.Reader = io.TeeReader(tr, progressWriter{h, prog})
			if extract != nil {
				if err := extract(hdr, body); err != nil {
					return nil, "", 0, err
				}
			}
			n, err := io.Copy(io.Discard, body)
			if err != nil {
				return nil, "", 0, err
			}
			_ = n
			e.size = hdr.Size
			copy(e.sum[:], h.Sum(nil))
			prog.file()
		} else if extract != nil {
			if err := extract(hdr, nil); err != nil {
				return nil, "", 0, err
			}
		}
		sums[hdr.Name] = e
	}
	// The rest of the file (compressor trailer, padding) counts in the hash.
	if _, err := io.Copy(io.Discard, src); err != nil {
		return nil, "", 0, err
	}
	return sums, hex.EncodeToString(fh.Sum(nil)), counted.n, nil
}

// progressCounter adds up one step's files and bytes and passes them on.
// A nil *progressCounter does nothing.
type progressCounter struct {
	fn func(ArchiveProgress)
	p  ArchiveProgress
}

func stepProgress(b *Backup, fn func(ArchiveProgress), step string) *progressCounter {
	if fn == nil {
		return nil
	}
	c := &progressCounter{fn: fn, p: ArchiveProgress{Step: step, TotalFiles: b.Usage.Files, TotalBytes: b.Usage.ApparentBytes}}
	fn(c.p)
	return c
}

func readProgress(b *Backup, opt ArchiveOptions) *progressCounter {
	return stepProgress(b, opt.Progress, StepReadingBack)
}

func (c *progressCounter) add(n int) {
	if c == nil || n == 0 {
		return
	}
	c.p.Bytes += int64(n)
	c.fn(c.p)
}

func (c *progressCounter) file() {
	if c == nil {
		return
	}
	c.p.Files++
	c.fn(c.p)
}

// progressWriter is a writer that also counts what goes through it.
type progressWriter struct {
	w io.Writer
	c *progressCounter
}

func (w progressWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.c.add(n)
	return n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.w.Write(p)
}

// checkEntry refuses an entry that would land outside <id>/: an absolute
// path, "..", another top-level folder, a link pointing out, or a kind of
// file a backup never holds.
func checkEntry(hdr *tar.Header, id string) error {
	name := hdr.Name
	clean := path.Clean(strings.TrimSuffix(name, "/"))
	if strings.HasPrefix(name, "/") || filepath.IsAbs(name) || strings.Contains(name, "\\") {
		return fmt.Errorf("refusing entry %q: absolute path", name)
	}
	for _, part := range strings.Split(strings.TrimSuffix(name, "/"), "/") {
		if part == ".." {
			return fmt.Errorf("refusing entry %q: it climbs out with \"..\"", name)
		}
	}
	if clean != id && !strings.HasPrefix(clean, id+"/") {
		return fmt.Errorf("refusing entry %q: outside the folder %s", name, id)
	}
	switch hdr.Typeflag {
	case tar.TypeDir, tar.TypeReg:
	case tar.TypeSymlink:
		t := hdr.Linkname
		if path.IsAbs(t) {
			return fmt.Errorf("refusing link %q -> %q: points out of the backup", name, t)
		}
		res := path.Clean(path.Join(path.Dir(clean), t))
		if res != id && !strings.HasPrefix(res, id+"/") {
			return fmt.Errorf("refusing link %q -> %q: points out of the backup", name, t)
		}
	default:
		return fmt.Errorf("refusing entry %q: type %q is not a file, folder or link", name, hdr.Typeflag)
	}
	return nil
}

func compareSums(want, got map[string]entrySum) string {
	var names []string
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		g, ok := got[n]
		w := want[n]
		switch {
		case !ok:
			return fmt.Sprintf("%s is missing", n)
		case g.kind != w.kind || g.size != w.size || g.target != w.target:
			return fmt.Sprintf("%s differs", n)
		case !bytes.Equal(g.sum[:], w.sum[:]):
			return fmt.Sprintf("%s: content differs", n)
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("%d entries, want %d", len(got), len(want))
	}
	return ""
}

// ArchiveFormatOf returns the format an archive's name ends with and the
// backup ID before it.
func ArchiveFormatOf(p string) (format, id string, err error) {
	base := filepath.Base(p)
	for _, f := range []string{FormatTarZst, FormatTarGz} {
		if strings.HasSuffix(base, "."+f) {
			return f, strings.TrimSuffix(base, "."+f), nil
		}
	}
	return "", "", fmt.Errorf("%s is not a .tar.zst or .tar.gz archive", p)
}

// Unarchive restores an archive made by Archive into root/<id>: it checks
// the archive against its sidecar's SHA-256 when there is one, extracts into
// a temporary folder inside root (.mbaudit-unarchive-*), refusing entries
// that would land outside <id>/, and renames the backup into place. It
// never overwrites an existing <id>.
func Unarchive(ctx context.Context, archive, root string) (string, error) {
	format, id, err := ArchiveFormatOf(archive)
	if err != nil {
		return "", err
	}
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\\") {
		return "", fmt.Errorf("%s: no backup ID in the name", archive)
	}
	final := filepath.Join(root, id)
	if _, err := os.Lstat(final); err == nil {
		return "", fmt.Errorf("%s already exists: not overwriting a backup", final)
	}
	var side *Sidecar
	if data, err := os.ReadFile(archive + ".json"); err == nil {
		side = &Sidecar{}
		if err := json.Unmarshal(data, side); err != nil {
			return "", fmt.Errorf("reading %s.json: %w", archive, err)
		}
	}
	tmp, err := os.MkdirTemp(root, TrashPrefix+"unarchive-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	type dirTime struct {
		p string
		t time.Time
	}
	var dirs []dirTime
	extract := func(hdr *tar.Header, body io.Reader) error {
		dst := filepath.Join(tmp, filepath.FromSlash(path.Clean(strings.TrimSuffix(hdr.Name, "/"))))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
			os.Chmod(dst, fs.FileMode(hdr.Mode).Perm()|0o700)
			dirs = append(dirs, dirTime{dst, hdr.ModTime})
		case tar.TypeSymlink:
			if err := os.Symlink(hdr.Linkname, dst); err != nil {
				return err
			}
		case tar.TypeReg:
			f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fs.FileMode(hdr.Mode).Perm())
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, body); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			return os.Chtimes(dst, hdr.ModTime, hdr.ModTime)
		}
		return nil
	}
	sums, hash, _, err := readArchive(ctx, archive, format, id, extract, nil)
	if err != nil {
		return "", fmt.Errorf("extracting %s: %w", archive, err)
	}
	if side != nil && side.ArchiveSHA256 != hash {
		return "", fmt.Errorf("%s does not match its sidecar's SHA-256: not restored", archive)
	}
	if _, ok := sums[id+"/"]; !ok {
		return "", fmt.Errorf("%s holds no folder %s/", archive, id)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		os.Chtimes(dirs[i].p, dirs[i].t, dirs[i].t)
	}
	if err := os.Rename(filepath.Join(tmp, id), final); err != nil {
		return "", fmt.Errorf("moving the restored backup into place: %w", err)
	}
	syncDir(root)
	return final, nil
}
