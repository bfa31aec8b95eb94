package backuptest

import (
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Row kinds (Files.flags of a healthy row).
const (
	kindFile    = 1
	kindDir     = 2
	kindSymlink = 4
)

// row is one index row and what goes on disk for it.
type row struct {
	domain, path string
	target       string
	fileID       string // as written in the index
	flags        int64  // Files.flags as written
	kind         int8   // what the row really is
	size         int64  // MBFile Size
	blob         int64  // on-disk blob length, -1 for none
	blobID       string // name the blob is stored under
	mode         int64
	pclass       int64
	uid, gid     int64
	inode        int64
	mtime        int64
	ctime        int64
	birth        int64
	mbFlags      int64
	digest       bool
	xattr        bool
	noSize       bool
	undecodable  bool
	hasTarget    bool
	badHash      bool // legacy: DataHash does not match the blob
	key          uint64
	walOnly      bool
	altered      bool   // encrypted blob with a flipped bit (AlteredBlobs)
	fileKey      []byte // the key the blob is encrypted with
	wrapped      []byte // EncryptionKey: its class and fileKey wrapped
}

// sha1Hex is the fileID of domain and relativePath.
func sha1Hex(domain, path string) string {
	h := sha1.New()
	h.Write([]byte(domain))
	h.Write([]byte{'-'})
	h.Write([]byte(path))
	return hex.EncodeToString(h.Sum(nil))
}

// FileID returns the fileID of a row: lowercase hex sha1(domain + "-" + relativePath).
func FileID(domain, relativePath string) string { return sha1Hex(domain, relativePath) }

// contentKey seeds the bytes of a blob: the same seed and path give the
// same contents in every backup.
func contentKey(seed int64, fileID string) uint64 {
	b, _ := hex.DecodeString(fileID)
	var x uint64
	if len(b) >= 8 {
		x = binary.BigEndian.Uint64(b)
	}
	return x ^ uint64(seed)*0x9e3779b97f4a7c15
}

type node struct {
	path     string
	children []int // indexes into tree.items
}

type item struct {
	path   string
	kind   int8
	zero   bool
	target string
	node   *node // folders
}

type tree struct {
	items []item
	dirs  map[string]*node
	root  *node
}

func newTree() *tree {
	t := &tree{dirs: map[string]*node{}}
	t.root = &node{}
	t.dirs[""] = t.root
	return t
}

// dir returns the folder at path, creating it and its parents.
func (t *tree) dir(path string) *node {
	if n, ok := t.dirs[path]; ok {
		return n
	}
	parent := t.root
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		parent = t.dir(path[:i])
	}
	n := &node{path: path}
	t.dirs[path] = n
	t.items = append(t.items, item{path: path, kind: kindDir, node: n})
	parent.children = append(parent.children, len(t.items)-1)
	return n
}

func (t *tree) add(path string, it item) {
	parent := t.root
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		parent = t.dir(path[:i])
	}
	it.path = path
	t.items = append(t.items, it)
	parent.children = append(parent.children, len(t.items)-1)
}

// walk visits the folder n and then its children in creation order, as the
// device lists a domain.
func (t *tree) walk(n *node, visit func(path string, it *item)) {
	for _, c := range n.children {
		it := &t.items[c]
		visit(it.path, it)
		if it.kind == kindDir {
			t.walk(it.node, visit)
		}
	}
}

type areaState struct {
	domain int
	a      *area
	k, j   int
	per    int
	dir    string
}

// generate lays out the rows of a healthy backup with nFiles regular files.
func generate(s *spec, date time.Time) ([]row, error) {
	r := rand.New(rand.NewPCG(uint64(s.seed), 0x6d62617564697431))
	cat := catalog()
	trees := make([]*tree, len(cat))
	base := make([]int, len(cat)) // items of the empty domain
	for i, d := range cat {
		trees[i] = newTree()
		if s.files >= 100 { // small backups keep only the folders their files need
			for _, p := range d.skeleton {
				trees[i].dir(p)
			}
		}
		base[i] = len(trees[i].items)
	}
	n := s.files

	// Well-known files first: the non-ASCII one and a 0-byte one always,
	// then a seeded pick of the others for a third of the files (two thirds
	// below 100 files, all of them from 300 files up).
	type ref struct {
		domain int
		s      single
	}
	var firsts, others []ref
	for i, d := range cat {
		for _, sg := range d.singles {
			rf := ref{i, sg}
			if !isASCII(sg.path) || sg.path == "Library/SMS/sms.db-wal" {
				firsts = append(firsts, rf)
			} else {
				others = append(others, rf)
			}
		}
	}
	r.Shuffle(len(others), func(i, j int) { others[i], others[j] = others[j], others[i] })
	singles := append(firsts, others...)
	nSingles := min(len(singles), max(n/3, min(n, len(firsts))))
	switch {
	case n >= 300:
		nSingles = min(len(singles), n)
	case n < 100:
		// Small backups: mostly the well-known files, fewer folders.
		nSingles = min(len(singles), max(n*2/3, min(n, len(firsts))))
	}
	for _, sg := range singles[:nSingles] {
		trees[sg.domain].add(sg.s.path, item{kind: kindFile, zero: sg.s.zero})
	}

	// The rest from the areas, by weight.
	var areas []*areaState
	var cum []int
	total := 0
	for i := range cat {
		for j := range cat[i].areas {
			a := &cat[i].areas[j]
			areas = append(areas, &areaState{domain: i, a: a, k: -1})
			total += a.weight
			cum = append(cum, total)
		}
	}
	for range n - nSingles {
		x := r.IntN(total)
		ai := 0
		for cum[ai] <= x {
			ai++
		}
		st := areas[ai]
		if st.k < 0 || (st.a.per > 0 && st.j >= st.per) {
			st.k++
			st.j = 0
			st.per = st.a.per
			if st.per > 1 {
				st.per = 1 + r.IntN(st.a.per)
			}
			st.dir = st.a.dir(r, st.k)
		}
		name := st.a.name(r, st.k, st.j)
		st.j++
		trees[st.domain].add(st.dir+"/"+name, item{kind: kindFile})
	}

	// Symlinks: about one per 80 files, at least one.
	if n > 0 {
		want := n/80 + 1
		var links []ref
		var linkTargets []symlink
		for i, d := range cat {
			for _, l := range d.links {
				links = append(links, ref{domain: i})
				linkTargets = append(linkTargets, l)
			}
		}
		for i := range want {
			if i < len(links) {
				trees[links[i].domain].add(linkTargets[i].path, item{kind: kindSymlink, target: linkTargets[i].target})
				continue
			}
			trees[0].add(fmt.Sprintf("Library/Preferences/com.apple.carrier_%d.plist", i),
				item{kind: kindSymlink, target: fmt.Sprintf("/var/mobile/Library/Carrier Bundles/Overlay/device+carrier+%d+D101+45.0.plist", 20800+i)})
		}
	}

	// Emit rows domain by domain: the domain's root folder, then a walk.
	rows := make([]row, 0, n*3/2+256)
	seen := make(map[string]struct{}, n*3/2+256)
	g := &metaGen{r: r, date: date, inode: 9000 + int64(r.IntN(200000)), s: s}
	emit := func(domain, path string, it *item) error {
		id := sha1Hex(domain, path)
		if _, dup := seen[id]; dup {
			return fmt.Errorf("generated %s-%s twice", domain, path)
		}
		seen[id] = struct{}{}
		rows = append(rows, g.row(domain, path, id, it))
		return nil
	}
	nEmpty := min(len(emptyDomains), n/100)
	for i, d := range cat {
		t := trees[i]
		// Small backups leave out the domains they have no files in.
		if len(t.items) == base[i] && (n < 300 || base[i] == 0) {
			continue
		}
		if err := emit(d.name, "", &item{kind: kindDir}); err != nil {
			return nil, err
		}
		var err error
		t.walk(t.root, func(p string, it *item) {
			if err == nil {
				err = emit(d.name, p, it)
			}
		})
		if err != nil {
			return nil, err
		}
	}
	for _, d := range emptyDomains[:nEmpty] {
		if err := emit(d, "", &item{kind: kindDir}); err != nil {
			return nil, err
		}
		for _, p := range appSkeleton {
			if err := emit(d, p, &item{kind: kindDir}); err != nil {
				return nil, err
			}
		}
	}
	return rows, nil
}

// metaGen draws the MBFile metadata of rows.
type metaGen struct {
	r     *rand.Rand
	date  time.Time
	inode int64
	s     *spec
}

func (g *metaGen) row(domain, path, id string, it *item) row {
	r := g.r
	g.inode += 1 + int64(r.IntN(40))
	rw := row{domain: domain, path: path, fileID: id, blobID: id, kind: it.kind, flags: int64(it.kind),
		inode: g.inode, uid: 501, gid: 501, blob: -1, key: contentKey(g.s.seed, id)}
	end := g.date.Unix() - 3600
	rw.mtime = end - int64(r.IntN(2*365*86400))
	rw.birth = rw.mtime
	if r.IntN(3) == 0 {
		rw.birth -= int64(r.IntN(365 * 86400))
	}
	rw.ctime = rw.mtime
	if r.IntN(10) == 0 {
		rw.ctime += int64(r.IntN(int(end-rw.mtime) + 1))
	}
	if r.IntN(300) == 0 {
		rw.mbFlags = 128
	}
	switch it.kind {
	case kindFile:
		rw.mode = pick(r, int64(0o100600), 0o100600, 0o100600, 0o100644, 0o100644)
		rw.pclass = pick(r, int64(3), 3, 3, 3, 3, 4, 4, 4, 4, 1)
		switch x := r.IntN(20); {
		case x == 0:
			rw.uid, rw.gid = 0, 0
		case x < 3:
			rw.gid = 0
		}
		rw.size = g.size(it.zero)
		rw.blob = rw.size
		rw.digest = r.IntN(100) < 44
		rw.xattr = r.IntN(100) < 6
	case kindDir:
		rw.mode = pick(r, int64(0o40755), 0o40755, 0o40755, 0o40755, 0o40755, 0o40755, 0o40755, 0o40755, 0o40755, 0o40700, 0o40700, 0o40000)
		if r.IntN(10) == 0 {
			rw.pclass = pick(r, int64(1), 3, 4, 4)
		}
		if r.IntN(30) == 0 {
			rw.uid, rw.gid = 0, 0
		}
		rw.xattr = r.IntN(500) == 0
	case kindSymlink:
		rw.mode = 0o120755
		rw.target = it.target
		rw.hasTarget = true
	}
	return rw
}

// size draws a file size: by default mostly small, a few 0 bytes and a few
// large; with FileSizes uniform in the range.
func (g *metaGen) size(zero bool) int64 {
	r := g.r
	if g.s.sizesSet {
		return g.s.minSize + r.Int64N(g.s.maxSize-g.s.minSize+1)
	}
	if zero {
		return 0
	}
	switch x := r.IntN(1000); {
	case x < 15:
		return 0
	case x < 17:
		return 64<<10 + r.Int64N(960<<10)
	}
	// Log-uniform from 1 byte to 8 KiB.
	bits := 1 + r.IntN(13)
	return 1 + r.Int64N(int64(1)<<bits)
}
