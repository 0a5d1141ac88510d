package audit

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A bundle comes from outside: VerifyBundle checks what the zip's central
// directory declares against these limits before it decompresses a byte,
// so that a small crafted file (a zip bomb, entries that overlap, huge
// declared sizes, a flood of entries) is refused at once instead of taking
// gigabytes. The zip reader refuses to read past an entry's declared size,
// so what is declared bounds what is read.

// VerifyLimits bound what VerifyBundle reads. Zero fields take the
// defaults below; a negative field lifts that limit. The CLI flag that sets
// each is named in LimitError messages.
type VerifyLimits struct {
	// Entries is the most files the zip may hold (--max-entries).
	Entries int
	// EntrySize bounds one file's uncompressed size, for every file but
	// attachments: those are read into memory (--max-entry-size).
	EntrySize int64
	// AttachmentSize bounds one attachment's uncompressed size; an
	// attachment is only streamed through SHA-256 (--max-attachment-size).
	AttachmentSize int64
	// TotalSize bounds the sum of all files' uncompressed sizes
	// (--max-total-size).
	TotalSize int64
	// Ratio bounds how many times their compressed size the files read
	// into memory may grow when decompressed, each and all together, once
	// over RatioFloor (--max-ratio). Signed JSON, links and PEM compress a
	// few times at most; a zip bomb, hundreds of times. With overlapping
	// entries refused, it bounds the memory a bundle can take to Ratio
	// times its size.
	Ratio int64
}

// Default limits: generous for any bundle the bus writes, and such that a
// bundle of a megabyte cannot make the verifier hold more than about a
// hundred.
const (
	DefaultMaxEntries        = 1_000_000
	DefaultMaxEntrySize      = 256 << 20
	DefaultMaxAttachmentSize = 5 << 30 // broker.DefaultLimits.MaxAttachmentSize
	DefaultMaxTotalSize      = 64 << 30
	DefaultMaxRatio          = 100
	// RatioFloor: files up to this size are not held to Ratio (a small
	// file of zeros is harmless).
	RatioFloor = 1 << 20
	// MaxEntryDepth is how deep a bundle's paths go: "dir/file".
	MaxEntryDepth = 2
	// MaxEntryName bounds an entry's name in bytes.
	MaxEntryName = 255
)

// withDefaults fills zero fields with the defaults.
func (l VerifyLimits) withDefaults() VerifyLimits {
	if l.Entries == 0 {
		l.Entries = DefaultMaxEntries
	}
	if l.EntrySize == 0 {
		l.EntrySize = DefaultMaxEntrySize
	}
	if l.AttachmentSize == 0 {
		l.AttachmentSize = DefaultMaxAttachmentSize
	}
	if l.TotalSize == 0 {
		l.TotalSize = DefaultMaxTotalSize
	}
	if l.Ratio == 0 {
		l.Ratio = DefaultMaxRatio
	}
	return l
}

// LimitError is a bundle over one of VerifyLimits. It wraps ErrBundleLimit
// (and so ErrBundle).
type LimitError struct {
	// Entry is the zip entry over the limit; "" for the bundle as a whole.
	Entry string
	// Limit names the limit: the VerifyLimits field.
	Limit string
	// Value is what the bundle has (declares), Max the limit.
	Value, Max int64
}

var limitFlags = map[string]string{
	"Entries": "--max-entries", "EntrySize": "--max-entry-size", "AttachmentSize": "--max-attachment-size",
	"TotalSize": "--max-total-size", "Ratio": "--max-ratio",
}

func (e *LimitError) Error() string {
	what := map[string]string{
		"Entries":        "%d entries, more than the limit of %d",
		"EntrySize":      "%d bytes uncompressed, more than the limit of %d for a file read into memory",
		"AttachmentSize": "%d bytes uncompressed, more than the limit of %d for an attachment",
		"TotalSize":      "%d bytes uncompressed in all, more than the limit of %d",
		"Ratio":          "decompresses to %d times its compressed size, more than the limit of %d (a zip bomb?)",
	}[e.Limit]
	if e.Limit == "Ratio" && e.Entry == "" {
		what = "the files read into memory decompress to %d times their compressed size, more than the limit of %d (a zip bomb?)"
	}
	msg := fmt.Sprintf(what, e.Value, e.Max)
	if e.Entry != "" {
		msg = fmt.Sprintf("entry %q: %s", e.Entry, msg)
	}
	return fmt.Sprintf("%v: %s (raise it with %s if the bundle is honest)", ErrBundleLimit, msg, limitFlags[e.Limit])
}

func (e *LimitError) Unwrap() error { return ErrBundleLimit }

// checkEntries checks the zip's directory before anything is read: the
// number of entries, every name, that no entry shares bytes with another,
// and every declared size. It returns the regular files by name.
func checkEntries(zr *zip.Reader, size int64, l VerifyLimits) (map[string]*zip.File, error) {
	if l.Entries > 0 && len(zr.File) > l.Entries {
		return nil, &LimitError{Limit: "Entries", Value: int64(len(zr.File)), Max: int64(l.Entries)}
	}
	files := make(map[string]*zip.File, len(zr.File))
	folded := make(map[string]string, len(zr.File))
	type span struct {
		f          *zip.File
		start, end int64
	}
	spans := make([]span, 0, len(zr.File))
	for _, f := range zr.File {
		if err := checkEntryName(f.Name); err != nil {
			return nil, err
		}
		mode := f.Mode()
		if mode.IsDir() && strings.HasSuffix(f.Name, "/") && f.UncompressedSize64 == 0 {
			continue // a folder entry, as `zip -r` writes them
		}
		if !mode.IsRegular() {
			return nil, fmt.Errorf("%w: entry %q is not a regular file (%s)", ErrBundle, f.Name, mode.Type())
		}
		if _, dup := files[f.Name]; dup {
			return nil, fmt.Errorf("%w: entry %q appears twice", ErrBundle, f.Name)
		}
		if other, dup := folded[strings.ToLower(f.Name)]; dup {
			return nil, fmt.Errorf("%w: entries %q and %q differ only in case", ErrBundle, other, f.Name)
		}
		files[f.Name], folded[strings.ToLower(f.Name)] = f, f.Name
		if f.UncompressedSize64 > 1<<62 || f.CompressedSize64 > 1<<62 {
			return nil, fmt.Errorf("%w: entry %q declares an impossible size", ErrBundle, f.Name)
		}
		off, err := f.DataOffset()
		if err != nil {
			return nil, fmt.Errorf("%w: entry %q: %v", ErrBundle, f.Name, err)
		}
		csize := int64(f.CompressedSize64)
		if off < 0 || off > size || csize > size-off {
			return nil, fmt.Errorf("%w: entry %q: its data (%d bytes at offset %d) lies outside the %d-byte file", ErrBundle, f.Name, csize, off, size)
		}
		spans = append(spans, span{f, off, off + csize})
	}
	// Entries that share compressed bytes are the way a small zip expands
	// to any size: every honest zip has each entry's data apart.
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	for i := 1; i < len(spans); i++ {
		if spans[i].start < spans[i-1].end {
			return nil, fmt.Errorf("%w: entries %q and %q share compressed data (overlapping entries: a zip bomb)", ErrBundle, spans[i-1].f.Name, spans[i].f.Name)
		}
	}
	// Sizes, in the zip's order so that the entry named is the one that
	// crossed a limit.
	var total, memTotal, memCompressed int64
	for _, f := range zr.File {
		if files[f.Name] != f {
			continue // a folder entry
		}
		usize, csize := int64(f.UncompressedSize64), int64(f.CompressedSize64)
		most, limit := l.EntrySize, "EntrySize"
		if strings.HasPrefix(f.Name, "attachments/") {
			most, limit = l.AttachmentSize, "AttachmentSize"
		}
		if most > 0 && usize > most {
			return nil, &LimitError{Entry: f.Name, Limit: limit, Value: usize, Max: most}
		}
		if limit == "EntrySize" {
			if l.Ratio > 0 && usize > RatioFloor && usize/max(csize, 1) > l.Ratio {
				return nil, &LimitError{Entry: f.Name, Limit: "Ratio", Value: usize / max(csize, 1), Max: l.Ratio}
			}
			// Many small bombs add up as much as one large one.
			memTotal, memCompressed = memTotal+usize, memCompressed+csize
			if l.Ratio > 0 && memTotal > RatioFloor && memTotal/max(memCompressed, 1) > l.Ratio {
				return nil, &LimitError{Limit: "Ratio", Value: memTotal / max(memCompressed, 1), Max: l.Ratio}
			}
		}
		total += usize
		if l.TotalSize > 0 && total > l.TotalSize {
			return nil, &LimitError{Limit: "TotalSize", Value: total, Max: l.TotalSize}
		}
	}
	return files, nil
}

// checkEntryName refuses names no bundle writer makes: absolute or
// climbing paths, backslashes, drive letters, control or invisible
// characters, deep nesting, very long names.
func checkEntryName(name string) error {
	bad := func(why string) error { return fmt.Errorf("%w: entry %q: %s", ErrBundle, name, why) }
	if len(name) > MaxEntryName {
		return bad(fmt.Sprintf("name of %d bytes, at most %d", len(name), MaxEntryName))
	}
	if !utf8.ValidString(name) {
		return bad("name is not UTF-8")
	}
	if strings.ContainsAny(name, `\:`) {
		return bad(`name holds '\' or ':' (a bundle's paths are relative, with '/')`)
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return bad(fmt.Sprintf("name holds the character %U", r))
		}
	}
	p := strings.TrimSuffix(name, "/")
	if !fs.ValidPath(p) || p == "." {
		return bad("not a clean relative path (empty, absolute, '.' or '..' elements)")
	}
	if d := strings.Count(p, "/") + 1; d > MaxEntryDepth {
		return bad(fmt.Sprintf("%d levels deep, a bundle's files are at most %d (dir/file)", d, MaxEntryDepth))
	}
	return nil
}

// limitedOpen opens f for reading at most its declared size, refusing
// more should the zip reader ever let more through.
func limitedOpen(f *zip.File) (io.ReadCloser, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	return &capReader{rc: rc, name: f.Name, size: int64(f.UncompressedSize64), left: int64(f.UncompressedSize64)}, nil
}

type capReader struct {
	rc         io.ReadCloser
	name       string
	size, left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, fmt.Errorf("%w: entry %q is longer than it declares", ErrBundle, c.name)
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.rc.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return n, fmt.Errorf("%w: entry %q is longer than it declares", ErrBundle, c.name)
	}
	if errors.Is(err, zip.ErrFormat) || errors.Is(err, zip.ErrChecksum) {
		// The zip reader stops at the declared size and checks the CRC.
		return n, fmt.Errorf("%w: entry %q: its data does not match the size (%d bytes) or checksum it declares: %v", ErrBundle, c.name, c.size, err)
	}
	return n, err
}

func (c *capReader) Close() error { return c.rc.Close() }
