package backuptest

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"strings"
)

// This file writes Manifest.db directly in the SQLite file format instead of
// going through a SQLite library. Inserting 700,000 rows with their four
// indexes through modernc.org/sqlite (one transaction, one prepared
// statement) took 12-15 s of CPU on this project's 2-core machines; writing
// the same pages here takes 3-4 s, encoding included. The result is an ordinary SQLite 3 database (the tests run
// PRAGMA integrity_check on it with modernc.org/sqlite): page size 4096,
// incremental auto-vacuum with pointer-map pages, user_version 2 and WAL
// mode in the header, the same schema rows and root pages (3 to 9) as the
// real iOS file, and rows in the order they were added.

const (
	dbPageSize      = 4096
	ptrmapPeriod    = dbPageSize/5 + 1 // a pointer-map page, then the 819 pages it describes
	pendingBytePage = 0x40000000/dbPageSize + 1
	maxTableLocal   = dbPageSize - 35             // largest table payload kept on its page
	maxIndexLocal   = (dbPageSize-12)*64/255 - 23 // largest index payload kept on its page
	sqliteVersion   = 3032003                     // SQLite of the real iOS 14 file
	filesTableSQL   = "CREATE TABLE Files (%s)"
	propertiesSQL   = "CREATE TABLE Properties (key TEXT PRIMARY KEY, value BLOB)"
)

// Pointer-map entry kinds.
const (
	ptrmapRoot  = 1
	ptrmapBtree = 5
)

// B-tree page kinds.
const (
	pageInnerIndex = 0x02
	pageInnerTable = 0x05
	pageLeafIndex  = 0x0a
	pageLeafTable  = 0x0d
)

// The Files columns, in schema order.
const (
	colFileID = iota
	colDomain
	colRelativePath
	colFlags
	colFile
	numCols
)

var filesColumns = [numCols]struct{ name, decl string }{
	{"fileID", "fileID TEXT PRIMARY KEY"},
	{"domain", "domain TEXT"},
	{"relativePath", "relativePath TEXT"},
	{"flags", "flags INTEGER"},
	{"file", "file BLOB"},
}

// filesIndexes are the secondary indexes of the real schema.
var filesIndexes = []struct {
	name string
	col  int
}{
	{"FilesDomainIdx", colDomain},
	{"FilesRelativePathIdx", colRelativePath},
	{"FilesFlagsIdx", colFlags},
}

// dbRow is one Files row.
type dbRow struct {
	fileID, domain, relativePath string
	flags                        int64
	file                         []byte
}

type rowKey struct {
	fileID, domain, relativePath string
	flags                        int64
}

type schemaObj struct {
	typ, name, tbl, sql string // sql "" is NULL
	root                uint32
	col                 int // indexed column, -1 for tables
}

// dbLayout says which parts of the real schema to write.
type dbLayout struct {
	noFiles bool          // leave the Files table out
	drop    [numCols]bool // Files columns to leave out
	wal     bool          // header bytes 18-19 = 2
}

// dbWriter streams Files rows into a new database file.
type dbWriter struct {
	f      *os.File
	layout dbLayout
	objs   []schemaObj
	npages uint32
	ptr    []byte // 5 bytes of pointer-map entry per page number

	rowid  int64
	leaf   pageBuf
	leaves level
	kids   []child
	keys   []rowKey
	rec    []byte
	cell   []byte

	run      []byte // pages waiting to be written at runStart
	runStart uint32

	// pages lists the pages of each B-tree by name (for CorruptIndexPages).
	pages map[string][]uint32
	err   error
}

type child struct {
	page uint32
	key  int64 // table trees: largest rowid below
}

// newDBWriter starts a database at path; rows is how many Files rows to expect.
func newDBWriter(path string, layout dbLayout, rows int) (*dbWriter, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	w := &dbWriter{f: f, layout: layout, pages: map[string][]uint32{}, keys: make([]rowKey, 0, rows)}
	// Root pages come first, right after page 1 and the first pointer-map
	// page, as SQLite places them in an auto-vacuum database.
	root := uint32(3)
	if !layout.noFiles {
		var decls []string
		for c := range numCols {
			if !layout.drop[c] {
				decls = append(decls, filesColumns[c].decl)
			}
		}
		w.objs = append(w.objs, schemaObj{"table", "Files", "Files", fmt.Sprintf(filesTableSQL, strings.Join(decls, ", ")), root, -1})
		root++
		if !layout.drop[colFileID] {
			w.objs = append(w.objs, schemaObj{"index", "sqlite_autoindex_Files_1", "Files", "", root, colFileID})
			root++
		}
		for _, ix := range filesIndexes {
			if layout.drop[ix.col] {
				continue
			}
			sql := fmt.Sprintf("CREATE INDEX %s ON Files(%s)", ix.name, filesColumns[ix.col].name)
			w.objs = append(w.objs, schemaObj{"index", ix.name, "Files", sql, root, ix.col})
			root++
		}
	}
	w.objs = append(w.objs, schemaObj{"table", "Properties", "Properties", propertiesSQL, root, -1})
	root++
	w.objs = append(w.objs, schemaObj{"index", "sqlite_autoindex_Properties_1", "Properties", "", root, -1})
	w.npages = root
	w.leaf.reset(pageLeafTable, 0)
	w.leaves = level{w: w}
	return w, nil
}

// alloc returns the next free page, skipping pointer-map pages and the
// page holding SQLite's lock byte.
func (w *dbWriter) alloc() uint32 {
	for {
		w.npages++
		p := w.npages
		if p != pendingBytePage && !isPtrmap(p) {
			return p
		}
	}
}

func isPtrmap(p uint32) bool { return p >= 2 && (p-2)%ptrmapPeriod == 0 }

func (w *dbWriter) setPtr(p uint32, kind byte, parent uint32) {
	need := int(p+1) * 5
	if len(w.ptr) < need {
		w.ptr = append(w.ptr, make([]byte, need-len(w.ptr)+5*1024)...)
	}
	w.ptr[p*5] = kind
	binary.BigEndian.PutUint32(w.ptr[p*5+1:], parent)
}

// writePage queues page p; consecutive pages go out in one write.
func (w *dbWriter) writePage(p uint32, b []byte) {
	if w.err != nil {
		return
	}
	if len(w.run) > 0 && (p != w.runStart+uint32(len(w.run)/dbPageSize) || len(w.run) >= 4<<20) {
		w.flushRun()
	}
	if len(w.run) == 0 {
		w.runStart = p
	}
	w.run = append(w.run, b...)
}

func (w *dbWriter) flushRun() {
	if len(w.run) == 0 || w.err != nil {
		return
	}
	_, w.err = w.f.WriteAt(w.run, int64(w.runStart-1)*dbPageSize)
	w.run = w.run[:0]
}

// add appends one row to Files.
func (w *dbWriter) add(r *dbRow) error {
	if w.layout.noFiles {
		return nil
	}
	w.rowid++
	rec := w.rec[:0]
	var types [numCols]uint64
	var ints [numCols]int
	n := 0
	for c := range numCols {
		if w.layout.drop[c] {
			continue
		}
		switch c {
		case colFileID:
			types[n] = textType(r.fileID)
		case colDomain:
			types[n] = textType(r.domain)
		case colRelativePath:
			types[n] = textType(r.relativePath)
		case colFlags:
			types[n], ints[n] = intType(r.flags)
		case colFile:
			types[n] = uint64(12 + 2*len(r.file))
		}
		n++
	}
	rec = appendRecordHeader(rec, types[:n])
	for c := range numCols {
		if w.layout.drop[c] {
			continue
		}
		switch c {
		case colFileID:
			rec = append(rec, r.fileID...)
		case colDomain:
			rec = append(rec, r.domain...)
		case colRelativePath:
			rec = append(rec, r.relativePath...)
		case colFlags:
			_, size := intType(r.flags)
			rec = appendIntBody(rec, r.flags, size)
		case colFile:
			rec = append(rec, r.file...)
		}
	}
	w.rec = rec
	if len(rec) > maxTableLocal {
		return fmt.Errorf("index row %q is %d bytes; overflow pages are not supported", r.relativePath, len(rec))
	}
	cell := appendVarint(w.cell[:0], uint64(len(rec)))
	cell = appendVarint(cell, uint64(w.rowid))
	cell = append(cell, rec...)
	w.cell = cell
	if !w.leaf.fits(len(cell)) {
		w.leaves.put(w.leaf.finish(0), nil)
		w.kids = append(w.kids, child{key: w.rowid - 1})
		w.leaf.reset(pageLeafTable, 0)
	}
	w.leaf.add(cell)
	w.keys = append(w.keys, rowKey{r.fileID, r.domain, r.relativePath, r.flags})
	return w.err
}

// close finishes every B-tree, the pointer map and page 1.
func (w *dbWriter) close() error {
	defer w.f.Close()
	for _, o := range w.objs {
		w.setPtr(o.root, ptrmapRoot, 0)
	}
	for _, o := range w.objs {
		switch {
		case o.name == "Files":
			w.finishTable(o)
		case o.typ == "index" && o.col >= 0:
			w.buildIndex(o)
		default: // the empty Properties table and its index
			var p pageBuf
			kind := byte(pageLeafTable)
			if o.typ == "index" {
				kind = pageLeafIndex
			}
			p.reset(kind, 0)
			w.writePage(o.root, p.finish(0))
			w.pages[o.name] = []uint32{o.root}
		}
	}
	w.writePage(1, w.page1())
	// Pointer-map pages.
	for p := uint32(2); p <= w.npages; p += ptrmapPeriod {
		page := make([]byte, dbPageSize)
		for q := p + 1; q < p+ptrmapPeriod && q <= w.npages; q++ {
			if int(q*5+5) <= len(w.ptr) {
				copy(page[(q-p-1)*5:], w.ptr[q*5:q*5+5])
			}
		}
		w.writePage(p, page)
	}
	w.flushRun()
	if w.err != nil {
		return w.err
	}
	if err := w.f.Truncate(int64(w.npages) * dbPageSize); err != nil {
		return err
	}
	return w.f.Close()
}

func (w *dbWriter) finishTable(o schemaObj) {
	w.leaves.put(w.leaf.finish(0), nil)
	w.kids = append(w.kids, child{key: w.rowid})
	kids := w.kids
	lv := w.leaves
	for {
		pages, isRoot := lv.finish(o.root)
		w.pages[o.name] = append(w.pages[o.name], pages...)
		if isRoot {
			return
		}
		for i := range kids {
			kids[i].page = pages[i]
		}
		kids, lv = w.tableInterior(kids)
	}
}

// tableInterior builds one level of interior table pages over kids and
// returns the children of the next level.
func (w *dbWriter) tableInterior(kids []child) ([]child, level) {
	lv := level{w: w}
	var up []child
	var p pageBuf
	var cell []byte
	cellFor := func(k int) []byte {
		cell = binary.BigEndian.AppendUint32(cell[:0], kids[k].page)
		return appendVarint(cell, uint64(kids[k].key))
	}
	k := 0
	for k < len(kids) {
		p.reset(pageInnerTable, 0)
		a := k
		for k < len(kids)-1 && p.fits(len(cellFor(k))) {
			p.add(cellFor(k))
			k++
		}
		if k < len(kids)-1 && k+1 == len(kids)-1 {
			// The next page would get a single child and no cell.
			p.removeLast()
			k--
		}
		ids := make([]uint32, 0, k-a+1)
		for i := a; i <= k; i++ {
			ids = append(ids, kids[i].page)
		}
		lv.put(p.finish(kids[k].page), ids)
		up = append(up, child{key: kids[k].key})
		k++
	}
	return up, lv
}

func textType(s string) uint64 { return uint64(13 + 2*len(s)) }

// intType returns the serial type and body size SQLite uses for v.
func intType(v int64) (uint64, int) {
	switch {
	case v == 0:
		return 8, 0
	case v == 1:
		return 9, 0
	case v >= -128 && v <= 127:
		return 1, 1
	case v >= -32768 && v <= 32767:
		return 2, 2
	case v >= -8388608 && v <= 8388607:
		return 3, 3
	case v >= -2147483648 && v <= 2147483647:
		return 4, 4
	case v >= -140737488355328 && v <= 140737488355327:
		return 5, 6
	}
	return 6, 8
}

func appendIntBody(b []byte, v int64, size int) []byte {
	for i := size - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

func varintLen(v uint64) int {
	n := 1
	for v > 0x7f && n < 9 {
		v >>= 7
		n++
	}
	return n
}

// appendVarint writes v as a SQLite varint (big-endian, 7 bits a byte, up to 9 bytes).
func appendVarint(b []byte, v uint64) []byte {
	if v <= 0x7f {
		return append(b, byte(v))
	}
	if v > 0x00ffffffffffffff {
		var buf [9]byte
		buf[8] = byte(v)
		v >>= 8
		for i := 7; i >= 0; i-- {
			buf[i] = byte(v&0x7f) | 0x80
			v >>= 7
		}
		return append(b, buf[:]...)
	}
	var buf [9]byte
	n := 0
	for v > 0 {
		buf[n] = byte(v&0x7f) | 0x80
		v >>= 7
		n++
	}
	buf[0] &= 0x7f
	for i := n - 1; i >= 0; i-- {
		b = append(b, buf[i])
	}
	return b
}

func appendRecordHeader(b []byte, types []uint64) []byte {
	h := 0
	for _, t := range types {
		h += varintLen(t)
	}
	n := h + 1
	for varintLen(uint64(n))+h != n {
		n = h + varintLen(uint64(n))
	}
	b = appendVarint(b, uint64(n))
	for _, t := range types {
		b = appendVarint(b, t)
	}
	return b
}

// indexRecord is the record of one index entry: the key column, then the rowid.
func indexRecord(b []byte, k *rowKey, col int, rowid int64) []byte {
	var kt uint64
	var ksize int
	var ks string
	switch col {
	case colFileID:
		ks = k.fileID
	case colDomain:
		ks = k.domain
	case colRelativePath:
		ks = k.relativePath
	case colFlags:
		kt, ksize = intType(k.flags)
	}
	if col != colFlags {
		kt = textType(ks)
	}
	rt, rsize := intType(rowid)
	b = appendRecordHeader(b, []uint64{kt, rt})
	if col == colFlags {
		b = appendIntBody(b, k.flags, ksize)
	} else {
		b = append(b, ks...)
	}
	return appendIntBody(b, rowid, rsize)
}

// buildIndex sorts the entries of one index and writes its B-tree bottom up.
// Index B-trees keep every entry once: a leaf, then one entry moved up as the
// divider, then the next leaf.
func (w *dbWriter) buildIndex(o schemaObj) {
	order := make([]int32, len(w.keys))
	for i := range order {
		order[i] = int32(i)
	}
	keys := w.keys
	switch o.col {
	case colFlags:
		slices.SortStableFunc(order, func(a, b int32) int { return cmp.Compare(keys[a].flags, keys[b].flags) })
	case colDomain:
		// Few distinct domains: bucket the rows (in rowid order) by domain.
		buckets := map[string][]int32{}
		for i := range keys {
			buckets[keys[i].domain] = append(buckets[keys[i].domain], int32(i))
		}
		names := make([]string, 0, len(buckets))
		for d := range buckets {
			names = append(names, d)
		}
		slices.Sort(names)
		order = order[:0]
		for _, d := range names {
			order = append(order, buckets[d]...)
		}
	default:
		strs := make([]string, len(keys))
		for i := range keys {
			switch o.col {
			case colFileID:
				strs[i] = keys[i].fileID
			case colDomain:
				strs[i] = keys[i].domain
			default:
				strs[i] = keys[i].relativePath
			}
		}
		slices.SortFunc(order, func(a, b int32) int {
			if c := strings.Compare(strs[a], strs[b]); c != 0 {
				return c
			}
			return cmp.Compare(a, b)
		})
	}
	recOf := func(b []byte, i int32) []byte { return indexRecord(b, &keys[i], o.col, int64(i)+1) }
	lv := level{w: w}
	var kids []uint32
	var divs [][]byte
	var p pageBuf
	var rec, cell []byte
	cellOf := func(i int32) []byte {
		rec = recOf(rec[:0], i)
		cell = appendVarint(cell[:0], uint64(len(rec)))
		return append(cell, rec...)
	}
	n := len(order)
	i := 0
	for {
		p.reset(pageLeafIndex, 0)
		for i < n {
			c := cellOf(order[i])
			if len(rec) > maxIndexLocal {
				w.fail(fmt.Errorf("index key of %d bytes needs overflow pages, which are not supported", len(rec)))
				return
			}
			if !p.fits(len(c)) {
				break
			}
			p.add(c)
			i++
		}
		if i == n {
			lv.put(p.finish(0), nil)
			break
		}
		if i == n-1 {
			// Only the divider would be left for the next leaf: move one more up.
			p.removeLast()
			i--
		}
		lv.put(p.finish(0), nil)
		kids = append(kids, 0)
		divs = append(divs, recOf(nil, order[i]))
		i++
	}
	kids = append(kids, 0)
	for {
		pages, isRoot := lv.finish(o.root)
		w.pages[o.name] = append(w.pages[o.name], pages...)
		if isRoot {
			return
		}
		copy(kids, pages)
		kids, divs, lv = w.indexInterior(kids, divs)
	}
}

// indexInterior builds one level of interior index pages: kids[k] and
// kids[k+1] are separated by divs[k].
func (w *dbWriter) indexInterior(kids []uint32, divs [][]byte) ([]uint32, [][]byte, level) {
	lv := level{w: w}
	var upKids []uint32
	var upDivs [][]byte
	var p pageBuf
	var cell []byte
	cellFor := func(k int) []byte {
		cell = binary.BigEndian.AppendUint32(cell[:0], kids[k])
		cell = appendVarint(cell, uint64(len(divs[k])))
		return append(cell, divs[k]...)
	}
	k := 0
	for k < len(kids) {
		p.reset(pageInnerIndex, 0)
		a := k
		for k < len(kids)-1 && p.fits(len(cellFor(k))) {
			p.add(cellFor(k))
			k++
		}
		if k < len(kids)-1 && k+1 == len(kids)-1 {
			p.removeLast()
			k--
		}
		lv.put(p.finish(kids[k]), slices.Clone(kids[a:k+1]))
		upKids = append(upKids, 0)
		if k < len(kids)-1 {
			upDivs = append(upDivs, divs[k])
		}
		k++
	}
	return upKids, upDivs, lv
}

func (w *dbWriter) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// page1 is the database header followed by the sqlite_schema table.
func (w *dbWriter) page1() []byte {
	var p pageBuf
	p.reset(pageLeafTable, 100)
	var rec, cell []byte
	for i, o := range w.objs {
		types := []uint64{textType(o.typ), textType(o.name), textType(o.tbl), 0, 0}
		rt, rsize := intType(int64(o.root))
		types[3] = rt
		if o.sql != "" {
			types[4] = textType(o.sql)
		}
		rec = appendRecordHeader(rec[:0], types)
		rec = append(rec, o.typ...)
		rec = append(rec, o.name...)
		rec = append(rec, o.tbl...)
		rec = appendIntBody(rec, int64(o.root), rsize)
		rec = append(rec, o.sql...)
		cell = appendVarint(cell[:0], uint64(len(rec)))
		cell = appendVarint(cell, uint64(i+1))
		cell = append(cell, rec...)
		p.add(cell)
	}
	b := p.finish(0)
	copy(b, "SQLite format 3\x00")
	binary.BigEndian.PutUint16(b[16:], dbPageSize)
	b[18], b[19] = 1, 1
	if w.layout.wal {
		b[18], b[19] = 2, 2
	}
	b[20], b[21], b[22], b[23] = 0, 64, 32, 32
	binary.BigEndian.PutUint32(b[24:], 3) // file change counter
	binary.BigEndian.PutUint32(b[28:], w.npages)
	binary.BigEndian.PutUint32(b[40:], 5) // schema cookie
	binary.BigEndian.PutUint32(b[44:], 4) // schema format
	binary.BigEndian.PutUint32(b[52:], w.objs[len(w.objs)-1].root)
	binary.BigEndian.PutUint32(b[56:], 1) // UTF-8
	binary.BigEndian.PutUint32(b[60:], 2) // user_version, as on the device
	binary.BigEndian.PutUint32(b[64:], 1) // incremental vacuum
	binary.BigEndian.PutUint32(b[92:], 3) // version-valid-for
	binary.BigEndian.PutUint32(b[96:], sqliteVersion)
	return b
}

// level collects the pages of one B-tree level. The first page is held back
// until a second one arrives: a level of one page is the root and goes to
// the root page number.
type level struct {
	w         *dbWriter
	n         int
	first     []byte
	firstKids []uint32
	pages     []uint32
}

func (l *level) put(page []byte, kids []uint32) {
	if l.n == 0 {
		l.first = bytes.Clone(page)
		l.firstKids = slices.Clone(kids)
		l.n++
		return
	}
	if l.n == 1 {
		l.place(l.w.alloc(), l.first, l.firstKids)
		l.first = nil
	}
	l.place(l.w.alloc(), page, kids)
	l.n++
}

func (l *level) place(p uint32, page []byte, kids []uint32) {
	l.w.writePage(p, page)
	for _, k := range kids {
		l.w.setPtr(k, ptrmapBtree, p)
	}
	l.pages = append(l.pages, p)
}

func (l *level) finish(root uint32) ([]uint32, bool) {
	if l.n == 1 {
		l.w.writePage(root, l.first)
		for _, k := range l.firstKids {
			l.w.setPtr(k, ptrmapBtree, root)
		}
		return []uint32{root}, true
	}
	return l.pages, false
}

// pageBuf assembles one B-tree page: header, cell pointers growing up,
// cells growing down from the end.
type pageBuf struct {
	b       [dbPageSize]byte
	off     int // 100 on page 1
	kind    byte
	n       int
	content int
	sizes   []int
}

func (p *pageBuf) reset(kind byte, off int) {
	p.b = [dbPageSize]byte{}
	p.off, p.kind, p.n, p.content = off, kind, 0, dbPageSize
	p.sizes = p.sizes[:0]
}

func (p *pageBuf) hdrSize() int {
	if p.kind == pageInnerIndex || p.kind == pageInnerTable {
		return 12
	}
	return 8
}

func (p *pageBuf) fits(cellLen int) bool {
	return p.off+p.hdrSize()+2*(p.n+1) <= p.content-cellLen
}

func (p *pageBuf) add(cell []byte) {
	p.content -= len(cell)
	copy(p.b[p.content:], cell)
	binary.BigEndian.PutUint16(p.b[p.off+p.hdrSize()+2*p.n:], uint16(p.content))
	p.n++
	p.sizes = append(p.sizes, len(cell))
}

func (p *pageBuf) removeLast() {
	p.n--
	size := p.sizes[len(p.sizes)-1]
	p.sizes = p.sizes[:len(p.sizes)-1]
	clear(p.b[p.content : p.content+size])
	p.content += size
	ptr := p.off + p.hdrSize() + 2*p.n
	p.b[ptr], p.b[ptr+1] = 0, 0
}

// finish writes the page header; right is the right-most child of an interior page.
func (p *pageBuf) finish(right uint32) []byte {
	h := p.b[p.off:]
	h[0] = p.kind
	binary.BigEndian.PutUint16(h[1:], 0)
	binary.BigEndian.PutUint16(h[3:], uint16(p.n))
	binary.BigEndian.PutUint16(h[5:], uint16(p.content))
	h[7] = 0
	if p.hdrSize() == 12 {
		binary.BigEndian.PutUint32(h[8:], right)
	}
	return p.b[:]
}
