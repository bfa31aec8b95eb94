package backup

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
	"howett.net/plist"

	"github.com/mbaudit/mbaudit/backup/manifest"
)

// GroupBy names how usage groups a backup's files.
type GroupBy string

// The groupings of `usage --by`.
const (
	ByApp      GroupBy = "app"
	ByDomain   GroupBy = "domain"
	ByCategory GroupBy = "category"
)

// SpaceOptions tune Breakdown.
type SpaceOptions struct {
	By   GroupBy
	Top  int // how many of the largest files to keep (0: none)
	Jobs int // parallel workers for the blob lengths (0: DefaultJobs)
	// Password, when not nil, lets an encrypted index be read: it is
	// decrypted into a private temporary folder, as verify does.
	Password *Password
	// Unlocking reports key-derivation progress (see VerifyOptions).
	Unlocking func(done, total int64)
}

// SpaceGroup is the files of one app, domain or category.
type SpaceGroup struct {
	Key       string // bundle ID, domain or category key
	Name      string // for people: the app's name, else Key
	Files     int64  // regular files the index lists
	Bytes     int64  // sum of their listed sizes
	DiskBytes int64  // sum of their blobs' lengths (0 for a missing blob)
}

// SpaceFile is one listed file.
type SpaceFile struct {
	Domain, RelativePath string
	Bytes                int64
}

// Space is where one backup's space goes, as its index tells.
type Space struct {
	By     GroupBy
	Groups []SpaceGroup // largest first
	Top    []SpaceFile  // largest first
	// Files, Bytes and DiskBytes total the groups.
	Files, Bytes, DiskBytes int64
	// Unread says why the index could not be read ("" when it was): the
	// backup then has no groups.
	Unread string
}

// Breakdown reads a backup's index once (Manifest.db or Manifest.mbdb, never
// blob contents) and groups its regular files by app, domain or category,
// with the listed sizes and the lengths of the blobs on disk. It never
// writes inside the backup. A backup whose index cannot be read gives a
// Space with Unread set, not an error; an error means the work could not
// run (cancelled).
func Breakdown(ctx context.Context, b *Backup, opt SpaceOptions) (*Space, error) {
	switch opt.By {
	case ByApp, ByDomain, ByCategory:
	default:
		return nil, fmt.Errorf("unknown grouping %q", opt.By)
	}
	t := &tally{b: b, opt: opt, domains: map[string]int32{}, last: -1, dbPath: filepath.Join(b.Path, "Manifest.db")}
	var err error
	switch {
	case b.IndexEncrypted && opt.Password != nil && !b.Has(KeybagMissing):
		var d *decryptedIndex
		var prob *problem
		d, prob, err = decryptIndex(ctx, b, opt.Password, opt.Unlocking)
		switch {
		case errors.Is(err, ErrWrongPassword):
			return &Space{By: opt.By, Unread: "the password is wrong"}, err
		case err != nil:
			return nil, err
		case prob != nil:
			return &Space{By: opt.By, Unread: prob.msg}, nil
		}
		defer d.Close()
		t.dbPath = d.Path
		err = t.scanDB(ctx)
	case b.IndexEncrypted:
		return &Space{By: opt.By, Unread: "the index is encrypted: sizes need the password"}, nil
	case b.Format == FormatManifestDB && !b.Has(ManifestDBInvalid):
		err = t.scanDB(ctx)
	case b.Format == FormatMbdb && !b.Has(ManifestMbdbInvalid):
		t.flat = true
		err = t.scanMbdb(ctx)
	default:
		return &Space{By: opt.By, Unread: "no readable index"}, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return &Space{By: opt.By, Unread: shortErr(err)}, nil
	}
	if err := t.measureBlobs(ctx); err != nil {
		return nil, err
	}
	return t.space(), nil
}

// catCount adds up one domain's files of one category.
type catCount struct{ files, bytes, disk int64 }

type domainTally struct {
	name     string
	fixedCat int // the category of every file of the domain, or -1
	cats     [6]catCount
}

// spaceRow is one listed file, kept for the pass over the blobs: about 40
// bytes a file.
type spaceRow struct {
	id   [20]byte
	dom  int32
	cat  uint8
	disk int64
}

type tally struct {
	b       *Backup
	opt     SpaceOptions
	flat    bool
	dbPath  string // the index to read: the backup's, or a decrypted copy
	domains map[string]int32
	doms    []domainTally
	last    int32 // the domain of the previous row: rows come grouped by domain
	buckets [256][]spaceRow
	top     topFiles
}

func (t *tally) scanDB(ctx context.Context) error {
	db, err := manifest.Open(t.dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.CheckSchema(); err != nil {
		return err
	}
	var fi manifest.FileInfo
	return db.Scan(ctx, func(r *manifest.Row) error {
		dom := t.domain(r.Domain)
		if r.FlagsNull || r.Flags != 1 {
			return nil
		}
		id, ok := parseFileID(r.FileID)
		if !ok {
			// Never turned into a path: such a file has no blob mbaudit would read.
			id = fileIDOf(r.Domain, r.RelativePath)
		}
		var size int64
		if manifest.ReadMBFile(r.File, &fi) == nil && fi.HasSize && fi.Size > 0 {
			size = fi.Size
		}
		t.file(dom, id, r.RelativePath, size)
		return nil
	})
}

func (t *tally) scanMbdb(ctx context.Context) error {
	return scanMbdbFile(ctx, filepath.Join(t.b.Path, "Manifest.mbdb"), func(r *manifest.MbdbRecord) error {
		dom := t.domain([]byte(r.Domain))
		if r.Mode&0xF000 != 0x8000 {
			return nil
		}
		path := []byte(r.Path)
		t.file(dom, fileIDOf([]byte(r.Domain), path), path, int64(r.Size))
		return nil
	})
}

// domain returns the index of a domain's tally, adding it when new.
func (t *tally) domain(name []byte) int32 {
	if t.last >= 0 && t.doms[t.last].name == string(name) {
		return t.last
	}
	i, ok := t.domains[string(name)]
	if !ok {
		s := string(name)
		i = int32(len(t.doms))
		d := domainTally{name: s, fixedCat: -1}
		if !domainHasFolderRules(s) {
			d.fixedCat = categoryIndex(s, "")
		}
		t.doms = append(t.doms, d)
		t.domains[s] = i
	}
	t.last = i
	return i
}

func (t *tally) file(dom int32, id [20]byte, path []byte, size int64) {
	d := &t.doms[dom]
	cat := d.fixedCat
	if cat < 0 {
		cat = categoryIndex(d.name, string(path))
	}
	c := &d.cats[cat]
	c.files++
	c.bytes += size
	t.buckets[id[0]] = append(t.buckets[id[0]], spaceRow{id: id, dom: dom, cat: uint8(cat)})
	if t.opt.Top > 0 && (len(t.top) < t.opt.Top || t.top.smaller(0, size, d.name, path)) {
		f := SpaceFile{Domain: d.name, RelativePath: string(path), Bytes: size}
		if len(t.top) < t.opt.Top {
			heap.Push(&t.top, f)
		} else {
			t.top[0] = f
			heap.Fix(&t.top, 0)
		}
	}
}

// measureBlobs takes the length of each listed file's blob, one prefix
// folder per worker: a stat each, no reading.
func (t *tally) measureBlobs(ctx context.Context) error {
	jobs := t.opt.Jobs
	if jobs <= 0 {
		jobs = DefaultJobs()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for p := range t.buckets {
		if len(t.buckets[p]) == 0 {
			continue
		}
		g.Go(func() error {
			if gctx.Err() != nil {
				return gctx.Err()
			}
			dir := t.b.Path
			if !t.flat {
				dir = filepath.Join(dir, hex.EncodeToString([]byte{byte(p)}))
			}
			f, err := os.Open(dir)
			if err != nil {
				return nil // no folder: every blob of it is missing
			}
			defer f.Close()
			fd := int(f.Fd())
			name := make([]byte, 40)
			for i := range t.buckets[p] {
				r := &t.buckets[p][i]
				hex.Encode(name, r.id[:])
				var st unix.Stat_t
				if err := unix.Fstatat(fd, string(name), &st, unix.AT_SYMLINK_NOFOLLOW); err == nil &&
					uint32(st.Mode)&unix.S_IFMT == unix.S_IFREG {
					r.disk = st.Size
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for p := range t.buckets {
		for _, r := range t.buckets[p] {
			t.doms[r.dom].cats[r.cat].disk += r.disk
		}
		t.buckets[p] = nil
	}
	return nil
}

// space groups the domain tallies as asked.
func (t *tally) space() *Space {
	s := &Space{By: t.opt.By}
	groups := map[string]*SpaceGroup{}
	add := func(key, name string, c catCount) {
		g := groups[key]
		if g == nil {
			g = &SpaceGroup{Key: key, Name: name}
			groups[key] = g
		}
		g.Files += c.files
		g.Bytes += c.bytes
		g.DiskBytes += c.disk
	}
	var fold *appFolder
	if t.opt.By == ByApp {
		names := make([]string, len(t.doms))
		for i, d := range t.doms {
			names[i] = d.name
		}
		fold = newAppFolder(names, t.b.Info)
	}
	for _, d := range t.doms {
		for ci, c := range d.cats {
			if c.files == 0 {
				continue
			}
			switch t.opt.By {
			case ByDomain:
				add(d.name, d.name, c)
			case ByCategory:
				add(Categories[ci].Key, Categories[ci].Name, c)
			default:
				key, name := fold.group(d.name)
				add(key, name, c)
			}
		}
	}
	for _, g := range groups {
		s.Groups = append(s.Groups, *g)
		s.Files += g.Files
		s.Bytes += g.Bytes
		s.DiskBytes += g.DiskBytes
	}
	sort.Slice(s.Groups, func(i, j int) bool {
		a, b := s.Groups[i], s.Groups[j]
		if a.Bytes != b.Bytes {
			return a.Bytes > b.Bytes
		}
		return a.Key < b.Key
	})
	s.Top = make([]SpaceFile, len(t.top))
	for i := len(t.top) - 1; i >= 0; i-- {
		s.Top[i] = heap.Pop(&t.top).(SpaceFile)
	}
	return s
}

// topFiles is a min-heap of the largest files seen: the smallest on top, to
// be replaced by a larger one. Ties go to the file that sorts first by
// domain and path, so the result does not depend on the index's order.
type topFiles []SpaceFile

func (h topFiles) Len() int           { return len(h) }
func (h topFiles) Less(i, j int) bool { return lessFile(h[i], h[j]) }
func (h topFiles) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *topFiles) Push(x any)        { *h = append(*h, x.(SpaceFile)) }
func (h *topFiles) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// lessFile orders files from the one to drop first: smaller, then later by
// domain and path.
func lessFile(a, b SpaceFile) bool {
	if a.Bytes != b.Bytes {
		return a.Bytes < b.Bytes
	}
	if a.Domain != b.Domain {
		return a.Domain > b.Domain
	}
	return a.RelativePath > b.RelativePath
}

// smaller reports whether the file at i would be dropped before a new file
// of the size, domain and path (without building the new file).
func (h topFiles) smaller(i int, size int64, domain string, path []byte) bool {
	x := h[i]
	if x.Bytes != size {
		return x.Bytes < size
	}
	if x.Domain != domain {
		return x.Domain > domain
	}
	return bytes.Compare([]byte(x.RelativePath), path) > 0
}

// The domain families whose files belong to an app.
const (
	appPrefix    = "AppDomain-"
	groupPrefix  = "AppDomainGroup-"
	pluginPrefix = "AppDomainPlugin-"
)

// appFolder folds app containers into their apps (the contract's rule).
type appFolder struct {
	apps  map[string][]string // bundle ID -> its dot-separated parts
	names map[string]string   // bundle ID -> display name from iTunesMetadata
	info  *InfoPlist
}

// newAppFolder knows the apps of a backup: the bundle IDs of its AppDomain-
// domains and the applications Info.plist lists.
func newAppFolder(domains []string, info *InfoPlist) *appFolder {
	f := &appFolder{apps: map[string][]string{}, names: map[string]string{}, info: info}
	addApp := func(id string) {
		if id != "" {
			f.apps[id] = strings.Split(id, ".")
		}
	}
	for _, d := range domains {
		if id, ok := strings.CutPrefix(d, appPrefix); ok {
			addApp(id)
		}
	}
	if info != nil {
		for _, id := range info.InstalledApps {
			addApp(id)
		}
		for id := range info.Applications {
			addApp(id)
		}
	}
	return f
}

// group returns the key and name of the row a domain's files go to in the
// app view: its app for app containers, else the domain itself.
func (f *appFolder) group(domain string) (key, name string) {
	if id, ok := strings.CutPrefix(domain, appPrefix); ok {
		return id, f.name(id)
	}
	container, ok := strings.CutPrefix(domain, groupPrefix)
	if !ok {
		container, ok = strings.CutPrefix(domain, pluginPrefix)
	}
	if !ok {
		return domain, domain
	}
	if app := FoldApp(container, f.apps); app != "" {
		return app, f.name(app)
	}
	return container, container
}

// FoldApp returns the app an AppDomainGroup- or AppDomainPlugin- container
// belongs to, or "" when it stands alone: the app with which the container
// (minus "group.") shares the longest dot-separated prefix, when that prefix
// has at least 3 parts and is the whole of the shorter of the two. apps maps
// bundle IDs to their parts (strings.Split(id, ".")).
func FoldApp(container string, apps map[string][]string) string {
	parts := strings.Split(strings.TrimPrefix(container, "group."), ".")
	best, bestN := "", 0
	for id, ap := range apps {
		n := 0
		for n < len(parts) && n < len(ap) && parts[n] == ap[n] {
			n++
		}
		if n < 3 || n != min(len(parts), len(ap)) {
			continue
		}
		if n > bestN || (n == bestN && id < best) {
			best, bestN = id, n
		}
	}
	return best
}

// name is an app's display name from Info.plist's iTunesMetadata, else its
// bundle ID.
func (f *appFolder) name(id string) string {
	if n, ok := f.names[id]; ok {
		return n
	}
	n := id
	if f.info != nil {
		if meta := f.info.Applications[id]; len(meta) > 0 {
			var m struct {
				ItemName string `plist:"itemName"`
			}
			if _, err := plist.Unmarshal(meta, &m); err == nil && strings.TrimSpace(m.ItemName) != "" {
				n = m.ItemName
			}
		}
	}
	f.names[id] = n
	return n
}

// WouldFree returns, for each backup, the bytes on disk its removal would
// free: its size minus the files it shares through hard links with another
// of the backups (which stay). Each backup must have been measured
// (Measure). Links to files outside bs are not known and count as freed.
func WouldFree(bs []*Backup) []int64 {
	holders := map[Inode]int{}
	for _, b := range bs {
		for ino := range b.Usage.Linked {
			holders[ino]++
		}
	}
	out := make([]int64, len(bs))
	for i, b := range bs {
		free := b.Usage.DiskBytes
		for ino, n := range b.Usage.Linked {
			if holders[ino] > 1 {
				free -= n
			}
		}
		out[i] = max(free, 0)
	}
	return out
}

// Reclaimable is what could go from a backup without losing a good backup:
// all it would free when it is incomplete or corrupt, else its leftover
// Snapshot/ folder and the orphan blobs verify found. A busy or unreadable
// backup has nothing reclaimable: hands off, or not known.
func Reclaimable(b *Backup, wouldFree int64) int64 {
	switch b.State {
	case StateBusy, StateUnreadable:
		return 0
	case StateIncomplete, StateCorrupt:
		return wouldFree
	}
	return b.Usage.SnapshotBytes + b.Usage.OrphanBytes
}
