package backuptest

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// This file holds a small property-list writer. howett.net/plist could write
// these files too, but it sorts map keys and shares no objects, while Apple's
// CFBinaryPlist writer keeps dictionary order and shares equal strings and
// numbers. Writing our own keeps the bytes close to what a device writes, and
// the tests decode every result with howett.net/plist.

// pdict is a property-list dictionary that keeps its keys in insertion order.
type pdict struct {
	keys []string
	vals []any
}

// newDict builds a pdict from alternating keys and values.
func newDict(kv ...any) *pdict {
	d := &pdict{}
	for i := 0; i+1 < len(kv); i += 2 {
		d.set(kv[i].(string), kv[i+1])
	}
	return d
}

// set replaces the value of k, or appends k at the end.
func (d *pdict) set(k string, v any) {
	for i, kk := range d.keys {
		if kk == k {
			d.vals[i] = v
			return
		}
	}
	d.keys = append(d.keys, k)
	d.vals = append(d.vals, v)
}

// puid is an NSKeyedArchiver object reference (binary plist type 0x8).
type puid uint64

// pfresh wraps a value that must get an object of its own in a binary plist
// rather than share an equal one written before (Apple's writer does this for
// some values; see mbfile.go).
type pfresh struct{ v any }

// Binary plist object kinds.
const (
	kBool byte = iota
	kInt
	kReal
	kDate
	kData
	kStr
	kUID
	kArray
	kDict
)

type bobj struct {
	kind  byte
	i     int64
	f     float64
	s     string // string or data bytes
	b     []byte // data bytes (fast path)
	ref0  int    // first index into bpEncoder.refs
	nref  int
	fresh bool // not shared with equal objects
}

type ukey struct {
	kind byte
	i    int64
	s    string
}

// bpEncoder writes binary plists ("bplist00"). It is reusable: encode resets it.
type bpEncoder struct {
	objs []bobj
	refs []int
	uniq map[ukey]int
	tmp  []int
	offs []uint64
	out  []byte
}

// appleEpoch is the reference date of plist dates.
var appleEpoch = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)

func (e *bpEncoder) add(o bobj, key *ukey) int {
	if key != nil {
		if i, ok := e.uniq[*key]; ok {
			return i
		}
		e.uniq[*key] = len(e.objs)
	}
	e.objs = append(e.objs, o)
	return len(e.objs) - 1
}

// flatten adds v and everything below it, depth first, the way CFBinaryPlist
// numbers objects: a container, then its keys, then its values.
func (e *bpEncoder) flatten(v any) int {
	fresh := false
	if f, ok := v.(pfresh); ok {
		fresh = true
		v = f.v
	}
	var o bobj
	var k ukey
	switch x := v.(type) {
	case string:
		o = bobj{kind: kStr, s: x}
		k = ukey{kind: kStr, s: x}
	case int:
		o = bobj{kind: kInt, i: int64(x)}
		k = ukey{kind: kInt, i: int64(x)}
	case int64:
		o = bobj{kind: kInt, i: x}
		k = ukey{kind: kInt, i: x}
	case bool:
		b := int64(0)
		if x {
			b = 1
		}
		o = bobj{kind: kBool, i: b}
		k = ukey{kind: kBool, i: b}
	case float64:
		o = bobj{kind: kReal, f: x}
		k = ukey{kind: kReal, i: int64(math.Float64bits(x))}
	case time.Time:
		f := float64(x.Sub(appleEpoch)) / float64(time.Second)
		o = bobj{kind: kDate, f: f}
		k = ukey{kind: kDate, i: int64(math.Float64bits(f))}
	case []byte:
		o = bobj{kind: kData, s: string(x)}
		k = ukey{kind: kData, s: string(x)}
	case puid:
		o = bobj{kind: kUID, i: int64(x)}
		k = ukey{kind: kUID, i: int64(x)}
	case []any:
		idx := e.add(bobj{kind: kArray}, nil)
		start := len(e.tmp)
		for _, el := range x {
			c := e.flatten(el)
			e.tmp = append(e.tmp, c)
		}
		return e.closeContainer(idx, start)
	case *pdict:
		idx := e.add(bobj{kind: kDict}, nil)
		start := len(e.tmp)
		for _, kk := range x.keys {
			e.tmp = append(e.tmp, e.flatten(kk))
		}
		for _, vv := range x.vals {
			c := e.flatten(vv)
			e.tmp = append(e.tmp, c)
		}
		return e.closeContainer(idx, start)
	default:
		panic(fmt.Sprintf("backuptest: cannot encode %T in a plist", v))
	}
	if fresh {
		o.fresh = true
		return e.add(o, nil)
	}
	return e.add(o, &k)
}

// byteCount is the number of bytes (1, 2, 4 or 8) needed for v.
func byteCount(v uint64) int {
	switch {
	case v <= 0xff:
		return 1
	case v <= 0xffff:
		return 2
	case v <= 0xffffffff:
		return 4
	}
	return 8
}

func putUint(b []byte, v uint64, n int) []byte {
	switch n {
	case 1:
		return append(b, byte(v))
	case 2:
		return binary.BigEndian.AppendUint16(b, uint16(v))
	case 4:
		return binary.BigEndian.AppendUint32(b, uint32(v))
	}
	return binary.BigEndian.AppendUint64(b, v)
}

func appendInt(b []byte, v int64) []byte {
	if v < 0 {
		return binary.BigEndian.AppendUint64(append(b, 0x13), uint64(v))
	}
	n := byteCount(uint64(v))
	var marker byte
	switch n {
	case 1:
		marker = 0x10
	case 2:
		marker = 0x11
	case 4:
		marker = 0x12
	default:
		marker = 0x13
	}
	return putUint(append(b, marker), uint64(v), n)
}

func appendMarker(b []byte, kind byte, n int) []byte {
	if n < 15 {
		return append(b, kind<<4|byte(n))
	}
	return appendInt(append(b, kind<<4|0xf), int64(n))
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// encode returns the binary plist of v. The result is valid until the next call.
func (e *bpEncoder) encode(v any) []byte {
	e.objs = e.objs[:0]
	e.refs = e.refs[:0]
	e.tmp = e.tmp[:0]
	if e.uniq == nil {
		e.uniq = make(map[ukey]int)
	} else {
		clear(e.uniq)
	}
	top := e.flatten(v)
	return e.serialize(top)
}

func (e *bpEncoder) serialize(top int) []byte {
	refSize := byteCount(uint64(len(e.objs)))
	b := append(e.out[:0], "bplist00"...)
	offsets := e.offs[:0]
	for range e.objs {
		offsets = append(offsets, 0)
	}
	e.offs = offsets
	for i, o := range e.objs {
		offsets[i] = uint64(len(b))
		switch o.kind {
		case kBool:
			b = append(b, 0x08|byte(o.i))
		case kInt:
			b = appendInt(b, o.i)
		case kReal:
			b = binary.BigEndian.AppendUint64(append(b, 0x23), math.Float64bits(o.f))
		case kDate:
			b = binary.BigEndian.AppendUint64(append(b, 0x33), math.Float64bits(o.f))
		case kData:
			if o.b != nil {
				b = append(appendMarker(b, 0x4, len(o.b)), o.b...)
			} else {
				b = append(appendMarker(b, 0x4, len(o.s)), o.s...)
			}
		case kStr:
			if isASCII(o.s) {
				b = append(appendMarker(b, 0x5, len(o.s)), o.s...)
			} else {
				u := utf16.Encode([]rune(o.s))
				b = appendMarker(b, 0x6, len(u))
				for _, c := range u {
					b = binary.BigEndian.AppendUint16(b, c)
				}
			}
		case kUID:
			n := byteCount(uint64(o.i))
			b = putUint(append(b, 0x80|byte(n-1)), uint64(o.i), n)
		case kArray:
			b = appendMarker(b, 0xa, o.nref)
			for _, r := range e.refs[o.ref0 : o.ref0+o.nref] {
				b = putUint(b, uint64(r), refSize)
			}
		case kDict:
			b = appendMarker(b, 0xd, o.nref/2)
			for _, r := range e.refs[o.ref0 : o.ref0+o.nref] {
				b = putUint(b, uint64(r), refSize)
			}
		}
	}
	tableAt := uint64(len(b))
	offSize := byteCount(tableAt)
	for _, off := range offsets {
		b = putUint(b, off, offSize)
	}
	b = append(b, 0, 0, 0, 0, 0, 0, byte(offSize), byte(refSize))
	b = binary.BigEndian.AppendUint64(b, uint64(len(e.objs)))
	b = binary.BigEndian.AppendUint64(b, uint64(top))
	b = binary.BigEndian.AppendUint64(b, tableAt)
	e.out = b
	return b
}

// binaryPlist returns a fresh binary plist of v.
func binaryPlist(v any) []byte {
	var e bpEncoder
	return bytes.Clone(e.encode(v))
}

// xmlPlist returns v as an XML plist in Apple's layout (tabs, 68-column data).
func xmlPlist(v any) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">` + "\n")
	b.WriteString(`<plist version="1.0">` + "\n")
	writeXML(&b, v, 0)
	b.WriteString("</plist>\n")
	return []byte(b.String())
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func writeXML(b *strings.Builder, v any, depth int) {
	ind := strings.Repeat("\t", depth)
	if f, ok := v.(pfresh); ok {
		v = f.v
	}
	switch x := v.(type) {
	case string:
		b.WriteString(ind + "<string>" + xmlEscape(x) + "</string>\n")
	case int:
		b.WriteString(ind + "<integer>" + strconv.Itoa(x) + "</integer>\n")
	case int64:
		b.WriteString(ind + "<integer>" + strconv.FormatInt(x, 10) + "</integer>\n")
	case bool:
		if x {
			b.WriteString(ind + "<true/>\n")
		} else {
			b.WriteString(ind + "<false/>\n")
		}
	case float64:
		b.WriteString(ind + "<real>" + strconv.FormatFloat(x, 'g', -1, 64) + "</real>\n")
	case time.Time:
		b.WriteString(ind + "<date>" + x.UTC().Format("2006-01-02T15:04:05Z") + "</date>\n")
	case []byte:
		b.WriteString(ind + "<data>\n")
		s := base64.StdEncoding.EncodeToString(x)
		for len(s) > 0 {
			n := min(68, len(s))
			b.WriteString(ind + s[:n] + "\n")
			s = s[n:]
		}
		b.WriteString(ind + "</data>\n")
	case puid:
		b.WriteString(ind + "<dict>\n" + ind + "\t<key>CF$UID</key>\n" + ind + "\t<integer>" + strconv.FormatUint(uint64(x), 10) + "</integer>\n" + ind + "</dict>\n")
	case []any:
		if len(x) == 0 {
			b.WriteString(ind + "<array/>\n")
			return
		}
		b.WriteString(ind + "<array>\n")
		for _, el := range x {
			writeXML(b, el, depth+1)
		}
		b.WriteString(ind + "</array>\n")
	case *pdict:
		if len(x.keys) == 0 {
			b.WriteString(ind + "<dict/>\n")
			return
		}
		b.WriteString(ind + "<dict>\n")
		for i, k := range x.keys {
			b.WriteString(ind + "\t<key>" + xmlEscape(k) + "</key>\n")
			writeXML(b, x.vals[i], depth+1)
		}
		b.WriteString(ind + "</dict>\n")
	default:
		panic(fmt.Sprintf("backuptest: cannot encode %T in a plist", v))
	}
}

// closeContainer moves the references flattened since start into the
// array or dictionary at idx, and returns idx.
func (e *bpEncoder) closeContainer(idx, start int) int {
	e.objs[idx].ref0 = len(e.refs)
	e.objs[idx].nref = len(e.tmp) - start
	e.refs = append(e.refs, e.tmp[start:]...)
	e.tmp = e.tmp[:start]
	return idx
}
