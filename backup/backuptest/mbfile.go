package backuptest

// mbFile is the metadata of one index row as the device archives it: an
// NSKeyedArchiver binary plist of an MBFile object (backup-format.md 5.3).
type mbFile struct {
	RelativePath       string
	Target             string
	HasTarget          bool
	Digest             []byte // nil: no Digest key
	EncryptionKey      []byte // nil: no EncryptionKey key; else 44 bytes
	ExtendedAttributes []byte // nil: none; else a binary plist
	Mode               int64
	InodeNumber        int64
	UserID, GroupID    int64
	LastModified       int64
	LastStatusChange   int64
	Birth              int64
	Size               int64
	NoSize             bool // leave the Size key out
	ProtectionClass    int64
	Flags              int64
	Root               int // index of the MBFile object in $objects; 0 means 1
}

// Key orders observed in real Manifest.db rows. The device's NSDictionary
// writes keys in hash order, which depends on the key set, so each kind of
// row has its own order. Optional keys sit where the real rows have them.
var (
	orderFile = []string{"LastModified", "Flags", "ExtendedAttributes", "GroupID", "$class",
		"LastStatusChange", "RelativePath", "Birth", "EncryptionKey", "Size", "Mode", "UserID",
		"InodeNumber", "ProtectionClass"}
	orderFileDigest = []string{"LastModified", "ProtectionClass", "Flags", "GroupID",
		"ExtendedAttributes", "$class", "LastStatusChange", "RelativePath", "Birth",
		"EncryptionKey", "Size", "Mode", "UserID", "Digest", "InodeNumber"}
	orderOther = []string{"LastModified", "Flags", "ExtendedAttributes", "GroupID", "Target",
		"$class", "LastStatusChange", "RelativePath", "Birth", "Size", "InodeNumber", "Mode",
		"UserID", "ProtectionClass"}
)

// mbEncoder turns mbFile values into archived blobs; it is reusable and not
// safe for concurrent use.
type mbEncoder struct {
	bp bpEncoder
}

// archiveGeneric returns the NSKeyedArchiver plist of f through the general
// plist writer; archive is the fast equivalent the tests compare it with.
//
// The object order and sharing imitate the device byte for byte (the tests
// check this against every row of a real Manifest.db): the MBFile dictionary
// first, then its strings and data in key order, then the class
// descriptions; equal numbers share one object except Size and InodeNumber,
// and the second "NSMutableData" string is not shared.
func (e *mbEncoder) archiveGeneric(f *mbFile) []byte {
	root := f.Root
	if root <= 0 {
		root = 1
	}
	objects := make([]any, 0, 10+root)
	objects = append(objects, "$null")
	for i := 1; i < root; i++ {
		objects = append(objects, pfresh{"$null"})
	}
	next := len(objects) + 1 // next UID after the MBFile object
	uidOf := func() puid { u := puid(next); next++; return u }

	var tail []any
	vals := map[string]any{}
	vals["RelativePath"] = uidOf()
	tail = append(tail, f.RelativePath)
	if f.HasTarget {
		vals["Target"] = uidOf()
		tail = append(tail, f.Target)
	}
	if f.Digest != nil {
		vals["Digest"] = uidOf()
		tail = append(tail, f.Digest)
	}
	if f.EncryptionKey != nil {
		vals["EncryptionKey"] = uidOf()
		cls := uidOf()
		tail = append(tail, newDict("NS.data", f.EncryptionKey, "$class", cls),
			newDict("$classname", "NSMutableData", "$classes",
				[]any{pfresh{"NSMutableData"}, "NSData", "NSObject"}))
	}
	if f.ExtendedAttributes != nil {
		vals["ExtendedAttributes"] = uidOf()
		tail = append(tail, f.ExtendedAttributes)
	}
	vals["$class"] = uidOf()
	tail = append(tail, newDict("$classname", "MBFile", "$classes", []any{"MBFile", "NSObject"}))

	vals["LastModified"] = f.LastModified
	vals["LastStatusChange"] = f.LastStatusChange
	vals["Birth"] = f.Birth
	vals["Flags"] = f.Flags
	vals["GroupID"] = f.GroupID
	vals["UserID"] = f.UserID
	vals["Mode"] = f.Mode
	vals["ProtectionClass"] = f.ProtectionClass
	vals["InodeNumber"] = pfresh{f.InodeNumber}
	if !f.NoSize {
		vals["Size"] = pfresh{f.Size}
	}

	order := orderOther
	if f.Mode&0xf000 == 0x8000 {
		order = orderFile
		if f.Digest != nil {
			order = orderFileDigest
		}
	}
	d := &pdict{keys: make([]string, 0, 16), vals: make([]any, 0, 16)}
	for _, k := range order {
		if v, ok := vals[k]; ok {
			d.keys = append(d.keys, k)
			d.vals = append(d.vals, v)
			delete(vals, k)
		}
	}
	// Keys no real row order covers (a Digest on a directory, say) go last.
	for _, k := range []string{"Target", "Digest", "EncryptionKey", "ExtendedAttributes", "Size"} {
		if v, ok := vals[k]; ok {
			d.keys = append(d.keys, k)
			d.vals = append(d.vals, v)
		}
	}
	objects = append(objects, d)
	objects = append(objects, tail...)

	top := newDict(
		"$version", 100000,
		"$archiver", "NSKeyedArchiver",
		"$top", newDict("root", puid(root)),
		"$objects", objects,
	)
	return e.bp.encode(top)
}

// archive returns the same bytes as archiveGeneric without building a value
// tree: at half a million rows the general writer's maps and boxed values
// cost several seconds.
func (m *mbEncoder) archive(f *mbFile) []byte {
	e := &m.bp
	e.objs = e.objs[:0]
	e.refs = e.refs[:0]
	root := f.Root
	if root <= 0 {
		root = 1
	}
	var top [8]int
	top[0] = e.push(bobj{kind: kDict})
	top[1] = e.str("$version")
	top[2] = e.str("$archiver")
	top[3] = e.str("$top")
	top[4] = e.str("$objects")
	top[5] = e.num(100000, false)
	top[6] = e.str("NSKeyedArchiver")
	top[7] = e.push(bobj{kind: kDict})
	rk, rv := e.str("root"), e.uid(int64(root))
	e.close(top[7], rk, rv)
	objs := e.push(bobj{kind: kArray})
	var list [48]int
	nl := 0
	list[nl] = e.str("$null")
	nl++
	for i := 1; i < root; i++ {
		list[nl] = e.push(bobj{kind: kStr, s: "$null"})
		nl++
	}

	// UIDs of the objects after the MBFile dictionary, in $objects order.
	next := int64(nl + 1)
	uidOf := func() int64 { next++; return next - 1 }
	var uRel, uTarget, uDigest, uKey, uKeyClass, uXattr int64
	uRel = uidOf()
	if f.HasTarget {
		uTarget = uidOf()
	}
	if f.Digest != nil {
		uDigest = uidOf()
	}
	if f.EncryptionKey != nil {
		uKey = uidOf()
		uKeyClass = uidOf()
	}
	if f.ExtendedAttributes != nil {
		uXattr = uidOf()
	}
	uClass := uidOf()

	order := orderOther
	if f.Mode&0xf000 == 0x8000 {
		order = orderFile
		if f.Digest != nil {
			order = orderFileDigest
		}
	}
	var keys [16]string
	nk := 0
	present := func(k string) bool {
		switch k {
		case "Target":
			return f.HasTarget
		case "Digest":
			return f.Digest != nil
		case "EncryptionKey":
			return f.EncryptionKey != nil
		case "ExtendedAttributes":
			return f.ExtendedAttributes != nil
		case "Size":
			return !f.NoSize
		}
		return true
	}
	for _, k := range order {
		if present(k) {
			keys[nk] = k
			nk++
		}
	}
	if f.Mode&0xf000 != 0x8000 { // keys no real row order covers go last
		for _, k := range [...]string{"Digest", "EncryptionKey"} {
			if present(k) {
				keys[nk] = k
				nk++
			}
		}
	} else if f.HasTarget {
		keys[nk] = "Target"
		nk++
	}

	list[nl] = e.push(bobj{kind: kDict})
	mb := list[nl]
	nl++
	var refs [32]int
	for i, k := range keys[:nk] {
		// No key equals a string written before it, so no search.
		refs[i] = e.push(bobj{kind: kStr, s: k})
	}
	for i, k := range keys[:nk] {
		var r int
		switch k {
		case "LastModified":
			r = e.num(f.LastModified, false)
		case "LastStatusChange":
			r = e.num(f.LastStatusChange, false)
		case "Birth":
			r = e.num(f.Birth, false)
		case "Flags":
			r = e.num(f.Flags, false)
		case "GroupID":
			r = e.num(f.GroupID, false)
		case "UserID":
			r = e.num(f.UserID, false)
		case "Mode":
			r = e.num(f.Mode, false)
		case "ProtectionClass":
			r = e.num(f.ProtectionClass, false)
		case "InodeNumber":
			r = e.num(f.InodeNumber, true)
		case "Size":
			r = e.num(f.Size, true)
		case "RelativePath":
			r = e.uid(uRel)
		case "Target":
			r = e.uid(uTarget)
		case "Digest":
			r = e.uid(uDigest)
		case "EncryptionKey":
			r = e.uid(uKey)
		case "ExtendedAttributes":
			r = e.uid(uXattr)
		case "$class":
			r = e.uid(uClass)
		}
		refs[nk+i] = r
	}
	e.close(mb, refs[:2*nk]...)

	list[nl] = e.str(f.RelativePath)
	nl++
	if f.HasTarget {
		list[nl] = e.str(f.Target)
		nl++
	}
	if f.Digest != nil {
		list[nl] = e.data(f.Digest)
		nl++
	}
	if f.EncryptionKey != nil {
		d := e.push(bobj{kind: kDict})
		list[nl] = d
		nl++
		k1, k2 := e.str("NS.data"), e.str("$class")
		v1, v2 := e.data(f.EncryptionKey), e.uid(uKeyClass)
		e.close(d, k1, k2, v1, v2)
		c := e.push(bobj{kind: kDict})
		list[nl] = c
		nl++
		k1, k2 = e.str("$classname"), e.str("$classes")
		v1 = e.str("NSMutableData")
		arr := e.push(bobj{kind: kArray})
		a1 := e.push(bobj{kind: kStr, s: "NSMutableData"})
		a2, a3 := e.str("NSData"), e.str("NSObject")
		e.close(arr, a1, a2, a3)
		e.close(c, k1, k2, v1, arr)
	}
	if f.ExtendedAttributes != nil {
		list[nl] = e.data(f.ExtendedAttributes)
		nl++
	}
	c := e.push(bobj{kind: kDict})
	list[nl] = c
	nl++
	k1, k2 := e.str("$classname"), e.str("$classes")
	v1 := e.str("MBFile")
	arr := e.push(bobj{kind: kArray})
	a1, a2 := e.str("MBFile"), e.str("NSObject")
	e.close(arr, a1, a2)
	e.close(c, k1, k2, v1, arr)

	e.close(objs, list[:nl]...)
	e.close(top[0], top[1], top[2], top[3], top[4], top[5], top[6], top[7], objs)
	return e.serialize(0)
}

// The fast path's object helpers. Uniquing scans the few objects already
// written, which is cheaper than the general writer's map at this size.

func (e *bpEncoder) push(o bobj) int {
	e.objs = append(e.objs, o)
	return len(e.objs) - 1
}

func (e *bpEncoder) close(container int, refs ...int) {
	e.objs[container].ref0 = len(e.refs)
	e.objs[container].nref = len(refs)
	e.refs = append(e.refs, refs...)
}

func (e *bpEncoder) str(s string) int {
	for i := range e.objs {
		if o := &e.objs[i]; o.kind == kStr && !o.fresh && o.s == s {
			return i
		}
	}
	return e.push(bobj{kind: kStr, s: s})
}

func (e *bpEncoder) num(v int64, fresh bool) int {
	if !fresh {
		for i := range e.objs {
			if o := &e.objs[i]; o.kind == kInt && !o.fresh && o.i == v {
				return i
			}
		}
	}
	return e.push(bobj{kind: kInt, i: v, fresh: fresh})
}

func (e *bpEncoder) uid(v int64) int {
	for i := range e.objs {
		if o := &e.objs[i]; o.kind == kUID && o.i == v {
			return i
		}
	}
	return e.push(bobj{kind: kUID, i: v})
}

func (e *bpEncoder) data(b []byte) int {
	for i := range e.objs {
		if o := &e.objs[i]; o.kind == kData && !o.fresh && string(o.b) == string(b) {
			return i
		}
	}
	return e.push(bobj{kind: kData, b: b})
}
