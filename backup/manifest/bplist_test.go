package manifest

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"unicode/utf16"

	"howett.net/plist"
)

// This file is a test-side binary plist writer with the knobs the reader's
// tests need (reference and offset widths, integer widths, object order),
// and an oracle that decodes with howett.net/plist.

// Object kinds for bpWriter.
type (
	bpInt struct {
		v     uint64
		width int // 1, 2, 4, 8 or 16 bytes; 0 = the smallest, as Apple writes
	}
	bpUID struct {
		v     uint64
		width int // 1..8 bytes; 0 = the smallest
	}
	bpASCII string
	bpUTF16 string
	bpData  []byte
	bpArray []int // object indices
	bpDict  struct{ keys, vals []int }
	bpRaw   []byte // written as is
)

type bpWriter struct {
	objs []any
	// strs dedups strings as Apple's writer does.
	strs map[string]int
}

func newBPWriter() *bpWriter { return &bpWriter{strs: map[string]int{}} }

func (w *bpWriter) add(o any) int {
	w.objs = append(w.objs, o)
	return len(w.objs) - 1
}

func (w *bpWriter) str(s string) int {
	if i, ok := w.strs[s]; ok {
		return i
	}
	i := w.add(bpASCII(s))
	w.strs[s] = i
	return i
}

// dict adds a dictionary of string keys; vals are object indices.
func (w *bpWriter) dict(kv ...any) int {
	var d bpDict
	for i := 0; i < len(kv); i += 2 {
		d.keys = append(d.keys, w.str(kv[i].(string)))
		d.vals = append(d.vals, kv[i+1].(int))
	}
	return w.add(d)
}

type bpLayout struct {
	refSize int  // 0 = the smallest that fits
	offSize int  // 0 = the smallest that fits
	shuffle bool // write objects in a random order
	seed    uint64
}

func minWidth(v uint64) int {
	switch {
	case v < 1<<8:
		return 1
	case v < 1<<16:
		return 2
	case v < 1<<32:
		return 4
	}
	return 8
}

func putUint(b []byte, v uint64, n int) []byte {
	for i := n - 1; i >= 0; i-- {
		if i >= 8 {
			b = append(b, 0)
			continue
		}
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

func putCount(b []byte, tag byte, n int) []byte {
	if n < 15 {
		return append(b, tag|byte(n))
	}
	b = append(b, tag|0x0F)
	w := minWidth(uint64(n))
	b = append(b, 0x10|byte(map[int]int{1: 0, 2: 1, 4: 2, 8: 3}[w]))
	return putUint(b, uint64(n), w)
}

// encode writes the objects as a bplist00 with top as the top object.
func (w *bpWriter) encode(top int, l bpLayout) []byte {
	refSize := l.refSize
	if refSize == 0 {
		refSize = minWidth(uint64(len(w.objs)))
	}
	order := make([]int, len(w.objs))
	for i := range order {
		order[i] = i
	}
	if l.shuffle {
		r := rand.New(rand.NewPCG(l.seed, 1))
		r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	b := []byte("bplist00")
	offsets := make([]uint64, len(w.objs))
	for _, i := range order {
		offsets[i] = uint64(len(b))
		switch o := w.objs[i].(type) {
		case bpInt:
			n := o.width
			if n == 0 {
				n = minWidth(o.v)
				if int64(o.v) < 0 {
					n = 8
				}
			}
			exp := map[int]byte{1: 0, 2: 1, 4: 2, 8: 3, 16: 4}[n]
			b = append(b, 0x10|exp)
			if n == 16 && int64(o.v) < 0 {
				b = append(b, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF)
				b = putUint(b, o.v, 8)
			} else {
				b = putUint(b, o.v, n)
			}
		case bpUID:
			n := o.width
			if n == 0 {
				n = minWidth(o.v)
			}
			b = append(b, 0x80|byte(n-1))
			b = putUint(b, o.v, n)
		case bpASCII:
			b = putCount(b, 0x50, len(o))
			b = append(b, o...)
		case bpUTF16:
			u := utf16.Encode([]rune(string(o)))
			b = putCount(b, 0x60, len(u))
			for _, c := range u {
				b = binary.BigEndian.AppendUint16(b, c)
			}
		case bpData:
			b = putCount(b, 0x40, len(o))
			b = append(b, o...)
		case bpArray:
			b = putCount(b, 0xA0, len(o))
			for _, r := range o {
				b = putUint(b, uint64(r), refSize)
			}
		case bpDict:
			b = putCount(b, 0xD0, len(o.keys))
			for _, r := range o.keys {
				b = putUint(b, uint64(r), refSize)
			}
			for _, r := range o.vals {
				b = putUint(b, uint64(r), refSize)
			}
		case bpRaw:
			b = append(b, o...)
		default:
			panic(fmt.Sprintf("bpWriter: %T", o))
		}
	}
	table := uint64(len(b))
	offSize := l.offSize
	if offSize == 0 {
		offSize = minWidth(table)
	}
	for _, off := range offsets {
		b = putUint(b, off, offSize)
	}
	b = append(b, 0, 0, 0, 0, 0, 0, byte(offSize), byte(refSize))
	b = binary.BigEndian.AppendUint64(b, uint64(len(w.objs)))
	b = binary.BigEndian.AppendUint64(b, uint64(top))
	b = binary.BigEndian.AppendUint64(b, table)
	return b
}

// mbRecord describes an MBFile to archive. Zero-valued optional fields are
// left out.
type mbRecord struct {
	RelativePath    string
	Size            int64
	NoSize          bool
	Mode            int64
	NoMode          bool
	ProtectionClass int64
	Inode           uint64
	Target          string // symlinks
	EncryptionKey   []byte // 44 bytes in real backups
	RawKey          bool   // EncryptionKey as plain data, not NSMutableData
	Digest          []byte

	IntWidth  int  // width of Size/Mode/ProtectionClass integers; 0 = smallest
	RootIndex int  // index of the MBFile in $objects; 0 = 1 as Apple writes
	UTF16Keys bool // write the MBFile's keys as UTF-16 strings
}

// archive builds the NSKeyedArchiver plist of r.
func archive(r mbRecord, l bpLayout) []byte { return archiveHook(r, l, nil) }

// archiveHook is archive with a hook that may change the MBFile dictionary
// before it is added.
func archiveHook(r mbRecord, l bpLayout, hook func(w *bpWriter, d *bpDict)) []byte {
	w := newBPWriter()
	// $objects holds, in order: $null, the MBFile (or placeholders until
	// RootIndex), the strings and data it refers to, then the classes.
	var elems []int
	uidOf := func(obj int) int {
		elems = append(elems, obj)
		return len(elems) - 1
	}
	uidOf(w.str("$null"))
	root := r.RootIndex
	if root == 0 {
		root = 1
	}
	for len(elems) < root {
		uidOf(w.add(bpASCII(fmt.Sprintf("filler-%d", len(elems)))))
	}
	elems = append(elems, -1) // the MBFile, filled in below
	intObj := func(v int64) int { return w.add(bpInt{v: uint64(v), width: r.IntWidth}) }
	uid := func(u int) int { return w.add(bpUID{v: uint64(u)}) }

	type kv struct {
		k string
		v int
	}
	var fields []kv
	add := func(k string, v int) { fields = append(fields, kv{k, v}) }
	add("LastModified", intObj(1610659523))
	add("Flags", intObj(0))
	add("GroupID", intObj(501))
	add("LastStatusChange", intObj(1610659523))
	add("RelativePath", uid(uidOf(w.str(r.RelativePath))))
	add("Birth", intObj(1610659523))
	if r.EncryptionKey != nil {
		data := w.add(bpData(r.EncryptionKey))
		if r.RawKey {
			add("EncryptionKey", uid(uidOf(data)))
		} else {
			ki := uidOf(-1)
			cls := uidOf(w.dict("$classname", w.str("NSMutableData"),
				"$classes", w.add(bpArray{w.str("NSMutableData"), w.str("NSData"), w.str("NSObject")})))
			elems[ki] = w.dict("NS.data", data, "$class", uid(cls))
			add("EncryptionKey", uid(ki))
		}
	}
	if r.Digest != nil {
		add("Digest", uid(uidOf(w.add(bpData(r.Digest)))))
	}
	if r.Target != "" {
		add("Target", uid(uidOf(w.str(r.Target))))
	}
	if !r.NoSize {
		add("Size", intObj(r.Size))
	}
	if !r.NoMode {
		add("Mode", intObj(r.Mode))
	}
	add("UserID", intObj(501))
	add("InodeNumber", w.add(bpInt{v: r.Inode}))
	add("ProtectionClass", intObj(r.ProtectionClass))
	cls := uidOf(w.dict("$classname", w.str("MBFile"),
		"$classes", w.add(bpArray{w.str("MBFile"), w.str("NSObject")})))
	add("$class", uid(cls))

	var d bpDict
	for _, f := range fields {
		if r.UTF16Keys {
			d.keys = append(d.keys, w.add(bpUTF16(f.k)))
		} else {
			d.keys = append(d.keys, w.str(f.k))
		}
		d.vals = append(d.vals, f.v)
	}
	if hook != nil {
		hook(w, &d)
	}
	elems[root] = w.add(d)

	top := w.dict(
		"$version", w.add(bpInt{v: 100000}),
		"$archiver", w.str("NSKeyedArchiver"),
		"$top", w.dict("root", w.add(bpUID{v: uint64(root)})),
		"$objects", w.add(bpArray(elems)),
	)
	return w.encode(top, l)
}

// howettMBFile decodes blob with howett.net/plist and applies ReadMBFile's
// rules to the decoded values. valid is false when the blob is not a
// bplist00 NSKeyedArchiver archive whose root is a dictionary with the
// expected types; then no agreement is expected.
func howettMBFile(blob []byte) (fi FileInfo, valid bool) {
	if len(blob) < 8 || string(blob[:8]) != "bplist00" {
		return fi, false // howett also takes other versions and formats
	}
	var v any
	ok := func() (ok bool) {
		defer func() {
			if recover() != nil { // howett re-panics runtime errors
				ok = false
			}
		}()
		format, err := plist.Unmarshal(blob, &v)
		return err == nil && format == plist.BinaryFormat
	}()
	if !ok {
		return fi, false
	}
	archive, _ := v.(map[string]any)
	top, _ := archive["$top"].(map[string]any)
	root, isUID := top["root"].(plist.UID)
	objects, isArray := archive["$objects"].([]any)
	if !isUID || !isArray || uint64(root) >= uint64(len(objects)) {
		return fi, false
	}
	rec, isDict := objects[root].(map[string]any)
	if !isDict {
		return fi, false
	}
	resolve := func(x any) (any, bool) {
		u, ok := x.(plist.UID)
		if !ok || uint64(u) >= uint64(len(objects)) {
			return nil, false
		}
		return objects[u], true
	}
	integer := func(key string, dst *int64, has *bool) bool {
		x, ok := rec[key]
		if !ok {
			return true
		}
		switch n := x.(type) {
		case uint64:
			*dst = int64(n)
		case int64:
			*dst = n
		default:
			return false
		}
		if has != nil {
			*has = true
		}
		return true
	}
	if !integer("Size", &fi.Size, &fi.HasSize) || !integer("Mode", &fi.Mode, &fi.HasMode) ||
		!integer("ProtectionClass", &fi.ProtectionClass, nil) {
		return fi, false
	}
	if x, ok := rec["Target"]; ok {
		t, ok := resolve(x)
		if !ok {
			return fi, false
		}
		s, ok := t.(string)
		if !ok {
			return fi, false
		}
		fi.HasTarget = s != "" && s != "$null"
	}
	if x, ok := rec["EncryptionKey"]; ok {
		k, ok := resolve(x)
		if !ok {
			return fi, false
		}
		if s, ok := k.(string); ok && s == "$null" {
			return fi, true
		}
		if d, ok := k.(map[string]any); ok {
			nd, ok := d["NS.data"]
			if !ok {
				return fi, false
			}
			if _, isUID := nd.(plist.UID); isUID {
				if nd, ok = resolve(nd); !ok {
					return fi, false
				}
			}
			k = nd
		}
		data, ok := k.([]byte)
		if !ok {
			return fi, false
		}
		fi.HasEncryptionKey = len(data) > 0
		fi.EncryptionKey = data
	}
	return fi, true
}
