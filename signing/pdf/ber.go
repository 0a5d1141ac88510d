package pdf

import (
	"errors"
	"fmt"
)

// CMS blobs from other signing tools are often BER (indefinite lengths);
// encoding/asn1 reads DER only. toDER rewrites indefinite lengths as
// definite ones, keeping tags and contents, iteratively bounded: nesting of
// at most maxASN1Depth and linear time, so hostile input can neither
// overflow the stack nor take quadratic time.

const maxASN1Depth = 48

var errASN1 = errors.New("malformed ASN.1")

type tlv struct {
	tag         []byte // identifier octets
	constructed bool
	indefinite  bool
	body        int // offset of the contents
	end         int // offset after the contents (after 00 00 when indefinite; -1 until known)
}

// readHeader parses the identifier and length octets at off.
func readHeader(b []byte, off int) (tlv, error) {
	start := off
	if off >= len(b) {
		return tlv{}, fmt.Errorf("%w: truncated at %d", errASN1, off)
	}
	constructed := b[off]&0x20 != 0
	if b[off]&0x1f == 0x1f { // high tag number
		off++
		for n := 0; ; n++ {
			if off >= len(b) || n > 4 {
				return tlv{}, fmt.Errorf("%w: bad tag at %d", errASN1, start)
			}
			if b[off]&0x80 == 0 {
				break
			}
			off++
		}
	}
	off++
	tag := b[start:off]
	if off >= len(b) {
		return tlv{}, fmt.Errorf("%w: truncated length at %d", errASN1, off)
	}
	l := b[off]
	off++
	t := tlv{tag: tag, constructed: constructed, body: off}
	switch {
	case l < 0x80:
		t.end = off + int(l)
	case l == 0x80:
		if !constructed {
			return tlv{}, fmt.Errorf("%w: indefinite length on a primitive at %d", errASN1, start)
		}
		t.indefinite = true
		t.end = -1
	default:
		n := int(l & 0x7f)
		if n > 4 || off+n > len(b) {
			return tlv{}, fmt.Errorf("%w: bad length at %d", errASN1, start)
		}
		length := 0
		for i := range n {
			length = length<<8 | int(b[off+i])
		}
		off += n
		t.body = off
		t.end = off + length
	}
	if !t.indefinite && (t.end < t.body || t.end > len(b)) {
		return tlv{}, fmt.Errorf("%w: length beyond data at %d", errASN1, start)
	}
	return t, nil
}

// toDER returns the first element of b with all lengths definite. DER input
// is returned unchanged (as a sub-slice) after one validating pass.
func toDER(b []byte) ([]byte, error) {
	top, err := readHeader(b, 0)
	if err != nil {
		return nil, err
	}
	if !hasIndefinite(b, top) {
		if top.end < 0 {
			return nil, errASN1
		}
		return b[:top.end], nil
	}
	out, _, err := encodeDefinite(b, 0, 0)
	return out, err
}

// hasIndefinite walks the tree iteratively and reports whether any element
// uses an indefinite length; it also bounds the depth.
func hasIndefinite(b []byte, top tlv) bool {
	if top.indefinite {
		return true
	}
	type frame struct{ off, end int }
	stack := []frame{{top.body, top.end}}
	if !top.constructed {
		return false
	}
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		if f.off >= f.end {
			stack = stack[:len(stack)-1]
			continue
		}
		t, err := readHeader(b, f.off)
		if err != nil || t.indefinite {
			return true // let encodeDefinite report it
		}
		if t.end > f.end {
			return true
		}
		f.off = t.end
		// Only universal SEQUENCE/SET and context-specific constructed
		// values are walked: primitive contents are opaque.
		if t.constructed {
			if len(stack) >= maxASN1Depth {
				return true
			}
			stack = append(stack, frame{t.body, t.end})
		}
	}
	return false
}

// encodeDefinite re-encodes the element at off with definite lengths and
// returns it with the offset after it.
func encodeDefinite(b []byte, off, depth int) ([]byte, int, error) {
	if depth > maxASN1Depth {
		return nil, 0, fmt.Errorf("%w: nested deeper than %d", errASN1, maxASN1Depth)
	}
	t, err := readHeader(b, off)
	if err != nil {
		return nil, 0, err
	}
	if !t.constructed {
		return appendElement(nil, t.tag, b[t.body:t.end]), t.end, nil
	}
	var body []byte
	pos := t.body
	for {
		if t.indefinite {
			if pos+1 < len(b) && b[pos] == 0 && b[pos+1] == 0 {
				pos += 2
				break
			}
			if pos >= len(b) {
				return nil, 0, fmt.Errorf("%w: missing end-of-contents", errASN1)
			}
		} else if pos >= t.end {
			break
		}
		child, next, err := encodeDefinite(b, pos, depth+1)
		if err != nil {
			return nil, 0, err
		}
		if !t.indefinite && next > t.end {
			return nil, 0, fmt.Errorf("%w: element overruns its parent at %d", errASN1, pos)
		}
		body = append(body, child...)
		pos = next
	}
	return appendElement(nil, t.tag, body), pos, nil
}

func appendElement(dst, tag, body []byte) []byte {
	dst = append(dst, tag...)
	n := len(body)
	switch {
	case n < 0x80:
		dst = append(dst, byte(n))
	case n < 1<<8:
		dst = append(dst, 0x81, byte(n))
	case n < 1<<16:
		dst = append(dst, 0x82, byte(n>>8), byte(n))
	case n < 1<<24:
		dst = append(dst, 0x83, byte(n>>16), byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, body...)
}
