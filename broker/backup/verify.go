package backup

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/docaxis/docaxis/storage"
)

// Verify reads a whole archive and checks it: a docaxis backup of a
// format this version reads, every entry listed in the manifest with its
// size and SHA-256, nothing listed missing, nothing unlisted present, and
// every stream's snapshot there. It returns the manifest.
func Verify(r io.Reader) (*Manifest, error) {
	tr := tar.NewReader(r)
	seen := map[string]Entry{}
	var order []string
	var m *Manifest
	var mb, sig, caPEM []byte
	var hdr *header
	for {
		th, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, readErr(err, "read the archive")
		}
		if m != nil {
			return nil, fmt.Errorf("%w: entry %q after the manifest", ErrDamaged, th.Name)
		}
		if th.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("%w: entry %q is not a regular file", ErrDamaged, th.Name)
		}
		if hdr == nil {
			if th.Name != headerName {
				return nil, fmt.Errorf("%w: not a docaxis backup (first entry %q, want %s)", ErrDamaged, th.Name, headerName)
			}
			if hdr, err = readHeader(tr, th.Size); err != nil {
				return nil, err
			}
			continue
		}
		if th.Name == signatureName {
			if sig != nil || hdr.Format < signedFormat {
				return nil, fmt.Errorf("%w: a manifest signature twice, or in a format %d archive", ErrDamaged, hdr.Format)
			}
			if th.Size > maxSignatureBytes {
				return nil, fmt.Errorf("%w: manifest signature of %d bytes", ErrDamaged, th.Size)
			}
			if sig, err = io.ReadAll(tr); err != nil {
				return nil, readErr(err, "read the manifest signature")
			}
			continue
		}
		if th.Name == manifestName {
			if m, mb, err = readManifest(tr, th.Size); err != nil {
				return nil, err
			}
			continue
		}
		if err := checkEntryName(th.Name); err != nil {
			return nil, err
		}
		if _, dup := seen[th.Name]; dup {
			return nil, fmt.Errorf("%w: entry %q twice", ErrDamaged, th.Name)
		}
		if len(seen) >= maxEntries {
			return nil, fmt.Errorf("%w: more than %d entries", ErrDamaged, maxEntries)
		}
		h := sha256.New()
		var w io.Writer = h
		var ca bytes.Buffer
		if th.Name == caCertName && th.Size <= maxCACertBytes {
			w = io.MultiWriter(h, &ca) // what CheckSigner compares
		}
		n, err := io.Copy(w, tr)
		if err != nil {
			return nil, readErr(err, "read "+th.Name)
		}
		if ca.Len() > 0 {
			caPEM = ca.Bytes()
		}
		sum := hex.EncodeToString(h.Sum(nil))
		if key, ok := strings.CutPrefix(th.Name, objectPrefix); ok && key != storage.Key(sum) {
			return nil, fmt.Errorf("%w: attachment %s holds bytes of SHA-256 %s", ErrDamaged, key, sum)
		}
		seen[th.Name] = Entry{Name: th.Name, Size: n, SHA256: sum}
		order = append(order, th.Name)
	}
	if hdr == nil {
		return nil, fmt.Errorf("%w: empty archive (not a docaxis backup, or cut off at its start)", ErrTruncated)
	}
	if m == nil {
		return nil, fmt.Errorf("%w: the archive ends after %d entries without its manifest (cut off while written or copied)", ErrTruncated, len(seen))
	}
	if hdr.Sealed && m.SHA256 == "" {
		return nil, fmt.Errorf("%w: the header says the manifest is sealed, the manifest has no SHA-256", ErrDamaged)
	}
	if m.Format != hdr.Format {
		return nil, fmt.Errorf("%w: manifest says format %d, header %d", ErrDamaged, m.Format, hdr.Format)
	}
	if hdr.Signed && sig == nil {
		return nil, fmt.Errorf("%w: the header says the manifest is signed, the archive has no signature", ErrDamaged)
	}
	if sig != nil {
		chain, err := checkManifestSignature(sig, mb)
		if err != nil {
			return nil, err
		}
		m.SignedBy = chain
	}
	m.caCert = parseCACert(caPEM)
	listed := map[string]Entry{}
	for _, e := range m.Entries {
		if _, dup := listed[e.Name]; dup {
			return nil, fmt.Errorf("%w: manifest lists %q twice", ErrDamaged, e.Name)
		}
		listed[e.Name] = e
		got, ok := seen[e.Name]
		switch {
		case !ok:
			return nil, fmt.Errorf("%w: %s is listed in the manifest but not in the archive", ErrTruncated, e.Name)
		case got.Size != e.Size:
			return nil, fmt.Errorf("%w: %s is %d bytes, the manifest says %d", ErrDamaged, e.Name, got.Size, e.Size)
		case got.SHA256 != e.SHA256:
			return nil, fmt.Errorf("%w: %s has SHA-256 %s, the manifest says %s", ErrDamaged, e.Name, got.SHA256, e.SHA256)
		}
	}
	for _, name := range order {
		if _, ok := listed[name]; !ok {
			return nil, fmt.Errorf("%w: %s is in the archive but not in the manifest", ErrDamaged, name)
		}
	}
	record := false
	names := map[string]bool{}
	for _, s := range m.Streams {
		if !validStreamName(s.Name) || names[s.Name] {
			return nil, fmt.Errorf("%w: stream name %q", ErrDamaged, s.Name)
		}
		names[s.Name] = true
		if s.Entry != streamPrefix+s.Name+".snap" || !strings.HasPrefix(s.Entry, streamPrefix) {
			return nil, fmt.Errorf("%w: stream %s's snapshot is %q", ErrDamaged, s.Name, s.Entry)
		}
		if _, ok := listed[s.Entry]; !ok {
			return nil, fmt.Errorf("%w: snapshot of stream %s is missing", ErrTruncated, s.Name)
		}
		if !json.Valid(s.Config) || !json.Valid(s.State) || len(s.Config) == 0 || len(s.State) == 0 {
			return nil, fmt.Errorf("%w: stream %s has no configuration or state", ErrDamaged, s.Name)
		}
		record = record || s.Name == recordStream
	}
	if !record {
		return nil, fmt.Errorf("%w: no snapshot of the record (stream %s)", ErrTruncated, recordStream)
	}
	for _, name := range order {
		if strings.HasPrefix(name, streamPrefix) && !names[strings.TrimSuffix(strings.TrimPrefix(name, streamPrefix), ".snap")] {
			return nil, fmt.Errorf("%w: %s belongs to no stream of the manifest", ErrDamaged, name)
		}
	}
	return m, nil
}

func readErr(err error, what string) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %s: the archive is cut off", ErrTruncated, what)
	}
	if errors.Is(err, tar.ErrHeader) || errors.Is(err, tar.ErrFieldTooLong) || errors.Is(err, tar.ErrInsecurePath) {
		return fmt.Errorf("%w: %s: %w", ErrDamaged, what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func readHeader(r io.Reader, size int64) (*header, error) {
	if size > maxHeaderBytes {
		return nil, fmt.Errorf("%w: header of %d bytes", ErrDamaged, size)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, readErr(err, "read the header")
	}
	var h header
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrDamaged, err)
	}
	if h.Format > FormatVersion {
		return nil, fmt.Errorf("%w: format %d, this docaxis reads up to %d (written by %s): restore with that version or newer", ErrNewerFormat, h.Format, FormatVersion, h.Tool)
	}
	if h.Format < 1 {
		return nil, fmt.Errorf("%w: header has no format version", ErrDamaged)
	}
	return &h, nil
}

// readManifest returns the manifest and its bytes.
func readManifest(r io.Reader, size int64) (*Manifest, []byte, error) {
	if size > maxManifestBytes {
		return nil, nil, fmt.Errorf("%w: manifest of %d bytes", ErrDamaged, size)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, readErr(err, "read the manifest")
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, nil, fmt.Errorf("%w: manifest: %w", ErrDamaged, err)
	}
	if m.SHA256 != "" {
		if err := checkSeal(&m, b); err != nil {
			return nil, nil, err
		}
	}
	return &m, b, nil
}

// checkEntryName admits only the names Write makes: home files as clean
// relative paths outside data/, snapshots, and content-addressed objects.
func checkEntryName(name string) error {
	switch {
	case strings.HasPrefix(name, homePrefix):
		rel := strings.TrimPrefix(name, homePrefix)
		if rel == "" || path.Clean(rel) != rel || path.IsAbs(rel) || rel == ".." || strings.HasPrefix(rel, "../") ||
			rel == "data" || strings.HasPrefix(rel, "data/") || strings.ContainsAny(rel, "\\\x00") {
			return fmt.Errorf("%w: home file %q", ErrDamaged, name)
		}
		return nil
	case strings.HasPrefix(name, streamPrefix):
		s, ok := strings.CutSuffix(strings.TrimPrefix(name, streamPrefix), ".snap")
		if !ok || !validStreamName(s) {
			return fmt.Errorf("%w: snapshot %q", ErrDamaged, name)
		}
		return nil
	case strings.HasPrefix(name, objectPrefix):
		if _, err := storage.CheckKey(strings.TrimPrefix(name, objectPrefix)); err != nil {
			return fmt.Errorf("%w: object %q: %w", ErrDamaged, name, err)
		}
		return nil
	}
	return fmt.Errorf("%w: unknown entry %q", ErrDamaged, name)
}
