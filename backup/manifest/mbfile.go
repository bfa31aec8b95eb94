package manifest

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// FileInfo holds the few fields of an MBFile record (the Files.file column of
// Manifest.db) that an audit needs.
type FileInfo struct {
	Size    int64 // logical size in bytes; 0 for directories and symlinks
	HasSize bool  // the record has a Size key
	Mode    int64 // file type and permission bits, as in st_mode
	HasMode bool  // the record has a Mode key

	// HasTarget reports a non-empty Target string (a symlink's target).
	HasTarget bool
	// HasEncryptionKey reports a non-empty EncryptionKey (raw data or an
	// NSMutableData dictionary with NS.data).
	HasEncryptionKey bool
	// EncryptionKey is that data (a 4-byte little-endian class and a
	// wrapped key), pointing into the record: valid only while the record's
	// bytes are.
	EncryptionKey []byte
	// ProtectionClass is the data-protection class, 0 when absent.
	ProtectionClass int64
}

// ErrMalformedMBFile is matched (with errors.Is) by every error ReadMBFile
// returns.
var ErrMalformedMBFile = errors.New("malformed MBFile")

// mbfileError says what was wrong and where. It is only built on the failure
// path, so the success path does not allocate.
type mbfileError struct {
	what string
	off  int // byte offset in the blob, or -1
}

func (e *mbfileError) Error() string {
	if e.off < 0 {
		return "malformed MBFile: " + e.what
	}
	return fmt.Sprintf("malformed MBFile: %s at byte %d", e.what, e.off)
}

func (e *mbfileError) Is(target error) bool { return target == ErrMalformedMBFile }

func bad(what string, off int) error { return &mbfileError{what: what, off: off} }

// Binary plist object markers (the high nibble of an object's first byte).
const (
	tagInt   = 0x10
	tagData  = 0x40
	tagASCII = 0x50
	tagUTF16 = 0x60
	tagUID   = 0x80
	tagArray = 0xA0
	tagDict  = 0xD0
)

// Keys looked up, in the order of the refs arrays below.
var (
	archiveKeys = [...]string{"$top", "$objects"}
	topKeys     = [...]string{"root"}
	mbfileKeys  = [...]string{"Size", "Mode", "ProtectionClass", "Target", "EncryptionKey"}
	nsDataKeys  = [...]string{"NS.data"}
)

const (
	keySize = iota
	keyMode
	keyProtectionClass
	keyTarget
	keyEncryptionKey
)

// bplist is a view of one binary plist. It lives on the caller's stack.
type bplist struct {
	b          []byte
	refSize    int    // bytes per object reference
	offSize    int    // bytes per offset-table entry
	numObjects uint64 // entries in the offset table
	table      int    // offset of the offset table; objects lie before it
	objects    int    // offset of the $objects array object
	objCount   uint64 // elements in $objects
	objList    int    // offset of the first reference in $objects
}

// ReadMBFile reads the Size, Mode, ProtectionClass, Target and EncryptionKey
// of the NSKeyedArchiver binary plist of an MBFile into fi, which it resets
// first. It follows $top.root into $objects rather than assuming index 1.
//
// It accepts what howett.net/plist's binary decoder accepts along the path it
// reads, except that the header must be exactly "bplist00", and it never
// allocates when the blob is well formed. A reference to the "$null" object
// counts as absent; a key of the wrong type (a Size that is not an integer, a
// Target that is not a string) is an error. Every error matches
// ErrMalformedMBFile.
func ReadMBFile(blob []byte, fi *FileInfo) error {
	*fi = FileInfo{}
	var p bplist
	if err := p.init(blob); err != nil {
		return err
	}
	topOff, err := p.object(p.top())
	if err != nil {
		return err
	}
	if p.b[topOff]&0xF0 != tagDict {
		return bad("top object is not a dictionary", topOff)
	}
	var archive [len(archiveKeys)]uint64
	found, err := p.lookup(topOff, archiveKeys[:], archive[:])
	if err != nil {
		return err
	}
	if found != 1<<len(archiveKeys)-1 {
		return bad("no $top or $objects", topOff)
	}

	// $top.root
	topDictOff, err := p.object(archive[0])
	if err != nil {
		return err
	}
	if p.b[topDictOff]&0xF0 != tagDict {
		return bad("$top is not a dictionary", topDictOff)
	}
	var rootRef [1]uint64
	if found, err = p.lookup(topDictOff, topKeys[:], rootRef[:]); err != nil {
		return err
	}
	if found == 0 {
		return bad("$top has no root", topDictOff)
	}
	root, err := p.uid(rootRef[0])
	if err != nil {
		return err
	}

	// $objects
	p.objects, err = p.object(archive[1])
	if err != nil {
		return err
	}
	if p.b[p.objects]&0xF0 != tagArray {
		return bad("$objects is not an array", p.objects)
	}
	if p.objCount, p.objList, err = p.list(p.objects, 1); err != nil {
		return err
	}

	mbOff, err := p.archived(root)
	if err != nil {
		return err
	}
	if p.b[mbOff]&0xF0 != tagDict {
		return bad("$top.root is not a dictionary", mbOff)
	}
	// The record must not be a container on the path to it (a cycle, which a
	// general decoder rejects too); $objects is an array, so it cannot be.
	if mbOff == topOff || mbOff == topDictOff {
		return bad("$top.root refers back to the archive", mbOff)
	}

	var refs [len(mbfileKeys)]uint64
	found, err = p.lookup(mbOff, mbfileKeys[:], refs[:])
	if err != nil {
		return err
	}
	if found&(1<<keySize) != 0 {
		if fi.Size, err = p.integer(refs[keySize], "Size"); err != nil {
			return err
		}
		fi.HasSize = true
	}
	if found&(1<<keyMode) != 0 {
		if fi.Mode, err = p.integer(refs[keyMode], "Mode"); err != nil {
			return err
		}
		fi.HasMode = true
	}
	if found&(1<<keyProtectionClass) != 0 {
		if fi.ProtectionClass, err = p.integer(refs[keyProtectionClass], "ProtectionClass"); err != nil {
			return err
		}
	}
	if found&(1<<keyTarget) != 0 {
		if fi.HasTarget, err = p.target(refs[keyTarget]); err != nil {
			return err
		}
	}
	if found&(1<<keyEncryptionKey) != 0 {
		if fi.EncryptionKey, err = p.encryptionKey(refs[keyEncryptionKey]); err != nil {
			return err
		}
		fi.HasEncryptionKey = len(fi.EncryptionKey) > 0
	}
	return nil
}

// init checks the header and the trailer with the same rules as
// howett.net/plist, so both accept the same documents.
func (p *bplist) init(b []byte) error {
	if len(b) < 40 {
		return bad("too short for a binary plist", -1)
	}
	if string(b[:8]) != "bplist00" {
		return bad("not a bplist00", 0)
	}
	t := len(b) - 32
	p.b = b
	p.offSize = int(b[t+6])
	p.refSize = int(b[t+7])
	p.numObjects = binary.BigEndian.Uint64(b[t+8:])
	table := binary.BigEndian.Uint64(b[t+24:])
	if table < 9 || table >= uint64(t) {
		return bad("offset table outside the document", t+24)
	}
	p.table = int(table)
	if (p.offSize < 1 || p.offSize > 8) && p.offSize != 16 {
		return bad("bad offset size", t+6)
	}
	if p.refSize < 1 || p.refSize > 8 {
		return bad("bad object reference size", t+7)
	}
	// The offset table must fill the space up to the trailer exactly.
	span := uint64(t - p.table)
	if p.numObjects == 0 || p.numObjects > span/uint64(p.offSize) || p.numObjects*uint64(p.offSize) != span {
		return bad("offset table does not match the object count", t+8)
	}
	if binary.BigEndian.Uint64(b[t+16:]) >= p.numObjects {
		return bad("top object out of range", t+16)
	}
	return nil
}

func (p *bplist) top() uint64 { return binary.BigEndian.Uint64(p.b[len(p.b)-16:]) }

// uint reads an n-byte big-endian unsigned integer at off, checking bounds.
func (p *bplist) uint(off, n int) (uint64, bool) {
	if off < 0 || n < 1 || n > len(p.b)-off || (n > 8 && n != 16) {
		return 0, false
	}
	return p.be(off, n), true
}

// be reads an n-byte big-endian unsigned integer at off, where the caller has
// checked the bounds. A 16-byte integer gives its low 64 bits, as in
// CoreFoundation and howett.net/plist.
func (p *bplist) be(off, n int) uint64 {
	switch n {
	case 1:
		return uint64(p.b[off])
	case 2:
		return uint64(binary.BigEndian.Uint16(p.b[off:]))
	case 4:
		return uint64(binary.BigEndian.Uint32(p.b[off:]))
	case 8:
		return binary.BigEndian.Uint64(p.b[off:])
	case 16:
		return binary.BigEndian.Uint64(p.b[off+8:])
	}
	var v uint64
	for _, c := range p.b[off : off+n] {
		v = v<<8 | uint64(c)
	}
	return v
}

// object returns the offset of object idx, which is always a valid index into
// p.b before the offset table.
func (p *bplist) object(idx uint64) (int, error) {
	// Fast path for the 2-byte offsets of every real MBFile (256 to 64K
	// bytes); small enough to be inlined.
	if p.offSize == 2 && idx < p.numObjects {
		e := p.table + int(idx)*2
		if off := int(p.b[e])<<8 | int(p.b[e+1]); off < p.table {
			return off, nil
		}
	}
	return p.objectSlow(idx)
}

func (p *bplist) objectSlow(idx uint64) (int, error) {
	if idx >= p.numObjects {
		return 0, errObject(idx, -1)
	}
	// In range: init checked that the table holds numObjects entries.
	e := p.table + int(idx)*p.offSize
	off := p.be(e, p.offSize)
	if off >= uint64(p.table) {
		return 0, errObject(idx, e)
	}
	return int(off), nil
}

//go:noinline
func errObject(idx uint64, entry int) error {
	if entry < 0 {
		return bad(fmt.Sprintf("object #%d out of range", idx), -1)
	}
	return bad(fmt.Sprintf("object #%d starts past the objects", idx), entry)
}

// span returns the count and the start of the content of a string, data,
// array or dictionary object at off, checking that width bytes per element
// fit before the offset table.
func (p *bplist) span(off, width int) (uint64, int, error) {
	n := int(p.b[off] & 0x0F)
	if n == 0x0F {
		return p.longSpan(off, width)
	}
	if off+1+n*width > p.table {
		return 0, 0, bad("object runs into the offset table", off)
	}
	return uint64(n), off + 1, nil
}

// longSpan is span for a count stored as an integer after the marker. As
// howett.net/plist does, it reads that integer's size nibble whatever its
// marker's high nibble.
func (p *bplist) longSpan(off, width int) (uint64, int, error) {
	if off+1 >= len(p.b) {
		return 0, 0, bad("count runs past the end", off)
	}
	size := 1 << (p.b[off+1] & 0x0F)
	n, ok := p.uint(off+2, size)
	if !ok {
		return 0, 0, bad("bad count", off+1)
	}
	start := off + 2 + size
	if start > p.table || n > uint64(p.table-start)/uint64(width) {
		return 0, 0, bad("object runs into the offset table", off)
	}
	return n, start, nil
}

// list returns the element count and first reference of an array
// (pairs = 1) or dictionary (pairs = 2).
func (p *bplist) list(off, pairs int) (uint64, int, error) {
	return p.span(off, pairs*p.refSize)
}

// ref returns reference i of a list that list checked.
func (p *bplist) ref(list int, i uint64) uint64 {
	if p.refSize == 1 {
		return uint64(p.b[list+int(i)])
	}
	return p.be(list+int(i)*p.refSize, p.refSize)
}

// lookup finds names among the keys of the dictionary at off and stores the
// value reference of each found name in refs; bit i of found is set for
// names[i]. A repeated key takes its last value, as in a decoded map.
func (p *bplist) lookup(off int, names []string, refs []uint64) (found uint32, err error) {
	n, list, err := p.list(off, 2)
	if err != nil {
		return 0, err
	}
	// Length filter: most keys match no name.
	var lens uint32
	for _, name := range names {
		lens |= 1 << len(name)
	}
	for i := uint64(0); i < n; i++ {
		// The common case, hand-inlined: 1-byte references, 2-byte
		// offsets, a short ASCII key.
		kidx := p.ref(list, i)
		koff := -1
		if p.offSize == 2 && kidx < p.numObjects {
			e := p.table + int(kidx)*2
			if off := int(p.b[e])<<8 | int(p.b[e+1]); off < p.table {
				koff = off
			}
		}
		if koff < 0 {
			if koff, err = p.objectSlow(kidx); err != nil {
				return 0, err
			}
		}
		var (
			wide   bool
			kn     uint64
			kstart int
		)
		if tag := p.b[koff]; tag&0xF0 == tagASCII && tag&0x0F != 0x0F {
			kn, kstart = uint64(tag&0x0F), koff+1
			if kstart+int(kn) > p.table {
				return 0, bad("object runs into the offset table", koff)
			}
		} else {
			if wide, kn, kstart, err = p.str(koff); err != nil {
				return 0, err
			}
			if kstart < 0 {
				continue // not a string: a general decoder rejects the dictionary
			}
		}
		if kn >= 32 || lens&(1<<kn) == 0 {
			continue
		}
		for j, name := range names {
			if p.strEq(wide, kn, kstart, name) {
				refs[j] = p.ref(list, n+i)
				found |= 1 << j
				break
			}
		}
	}
	return found, nil
}

// str returns the encoding, length in characters and content offset of the
// string object at off, with its bounds checked, or start -1 when the object
// is not a string.
func (p *bplist) str(off int) (wide bool, n uint64, start int, err error) {
	switch p.b[off] & 0xF0 {
	case tagASCII:
		n, start, err = p.span(off, 1)
		return false, n, start, err
	case tagUTF16:
		n, start, err = p.span(off, 2)
		return true, n, start, err
	}
	return false, 0, -1, nil
}

// strEq reports whether the string found by str equals the ASCII name.
func (p *bplist) strEq(wide bool, n uint64, start int, name string) bool {
	if n != uint64(len(name)) {
		return false
	}
	if !wide {
		return string(p.b[start:start+len(name)]) == name
	}
	for i := 0; i < len(name); i++ {
		if binary.BigEndian.Uint16(p.b[start+2*i:]) != uint16(name[i]) {
			return false
		}
	}
	return true
}

// integer reads the integer object that ref points at.
func (p *bplist) integer(ref uint64, key string) (int64, error) {
	off, err := p.object(ref)
	if err != nil {
		return 0, err
	}
	tag := p.b[off]
	if tag&0xF0 != tagInt {
		return 0, bad(key+" is not an integer", off)
	}
	if tag&0x0F > 4 {
		return 0, bad(key+" has a bad integer size", off)
	}
	v, ok := p.uint(off+1, 1<<(tag&0x0F))
	if !ok {
		return 0, bad(key+" runs past the end", off)
	}
	return int64(v), nil
}

// uid reads the UID object that ref points at.
func (p *bplist) uid(ref uint64) (uint64, error) {
	off, err := p.object(ref)
	if err != nil {
		return 0, err
	}
	tag := p.b[off]
	if tag&0xF0 != tagUID {
		return 0, bad("expected a UID", off)
	}
	v, ok := p.uint(off+1, int(tag&0x0F)+1)
	if !ok {
		return 0, bad("bad UID", off)
	}
	return v, nil
}

// archived returns the offset of $objects[uid].
func (p *bplist) archived(uid uint64) (int, error) {
	if uid >= p.objCount {
		return 0, bad(fmt.Sprintf("UID %d beyond $objects", uid), p.objects)
	}
	return p.object(p.ref(p.objList, uid))
}

// resolve follows the UID that ref points at into $objects, and reports
// whether it is the "$null" object (NSKeyedArchiver's nil).
func (p *bplist) resolve(ref uint64) (off int, null bool, err error) {
	uid, err := p.uid(ref)
	if err != nil {
		return 0, false, err
	}
	if off, err = p.archived(uid); err != nil {
		return 0, false, err
	}
	wide, n, start, err := p.str(off)
	if err != nil {
		return 0, false, err
	}
	return off, start >= 0 && p.strEq(wide, n, start, "$null"), nil
}

// target reports whether ref leads to a non-empty string.
func (p *bplist) target(ref uint64) (bool, error) {
	off, null, err := p.resolve(ref)
	if err != nil || null {
		return false, err
	}
	_, n, start, err := p.str(off)
	if err != nil {
		return false, err
	}
	if start < 0 {
		return false, bad("Target is not a string", off)
	}
	return n > 0, nil
}

// encryptionKey returns the data ref leads to, either raw or in the NS.data of an NSMutableData dictionary.
func (p *bplist) encryptionKey(ref uint64) ([]byte, error) {
	off, null, err := p.resolve(ref)
	if err != nil || null {
		return nil, err
	}
	if p.b[off]&0xF0 == tagDict {
		var dataRef [1]uint64
		found, err := p.lookup(off, nsDataKeys[:], dataRef[:])
		if err != nil {
			return nil, err
		}
		if found == 0 {
			return nil, bad("EncryptionKey has no NS.data", off)
		}
		if off, err = p.object(dataRef[0]); err != nil {
			return nil, err
		}
		if p.b[off]&0xF0 == tagUID {
			if off, _, err = p.resolve(dataRef[0]); err != nil {
				return nil, err
			}
		}
	}
	if p.b[off]&0xF0 != tagData {
		return nil, bad("EncryptionKey is not data", off)
	}
	n, start, err := p.span(off, 1)
	if err != nil {
		return nil, err
	}
	return p.b[start : start+int(n) : start+int(n)], nil
}
