package audit_test

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io/fs"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/audit"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
)

// Crafted zips for the verifier's limits: what an attacker hands an
// auditor.

// zipEntry is one file of a crafted zip. Declared, when set, is the
// uncompressed size the headers claim instead of the real one; Raw, when
// set, is the deflate stream written as it is (data is then unused).
type zipEntry struct {
	name     string
	data     []byte
	raw      []byte
	real     int64 // uncompressed size of raw (for the CRC, zero: unknown)
	declared int64
	mode     fs.FileMode
}

func craftZip(t testing.TB, entries ...zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)}
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		if e.raw == nil && e.declared == 0 {
			w, err := zw.CreateHeader(h)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(e.data)
			continue
		}
		raw, size := e.raw, e.real
		if raw == nil {
			raw, size = deflate(e.data), int64(len(e.data))
		}
		h.CompressedSize64, h.UncompressedSize64 = uint64(len(raw)), uint64(size)
		if e.declared != 0 {
			h.UncompressedSize64 = uint64(e.declared)
		}
		if e.data != nil {
			h.CRC32 = crc32.ChecksumIEEE(e.data)
		}
		w, err := zw.CreateRaw(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(raw)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func deflate(b []byte) []byte {
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestCompression)
	fw.Write(b)
	fw.Close()
	return buf.Bytes()
}

// zeroBomb returns a deflate stream of mib MiB of zeros, about a thousand
// times smaller, made without compressing them all: one flushed block of a
// MiB of zeros repeats as it is.
func zeroBomb(mib int) []byte {
	var blk bytes.Buffer
	fw, _ := flate.NewWriter(&blk, flate.BestCompression)
	fw.Write(make([]byte, 1<<20))
	fw.Flush()
	block := bytes.Clone(blk.Bytes())
	out := bytes.Repeat(block, mib)
	return append(out, 0x03, 0x00) // a final empty block
}

// overlappingZip has n central-directory entries that all point at the
// same local entry: the classic way a small zip expands to any size.
func overlappingZip(n int, data []byte) []byte {
	comp := deflate(data)
	crc := crc32.ChecksumIEEE(data)
	var b bytes.Buffer
	le := binary.LittleEndian
	name := audit.RecordFile(1)
	w := func(v any) { binary.Write(&b, le, v) }
	w(uint32(0x04034b50))
	w(uint16(20))
	w(uint16(0))
	w(uint16(8))
	w(uint32(0))
	w(crc)
	w(uint32(len(comp)))
	w(uint32(len(data)))
	w(uint16(len(name)))
	w(uint16(0))
	b.WriteString(name)
	b.Write(comp)
	cdStart := b.Len()
	for i := range n {
		name := audit.RecordFile(uint64(i + 1))
		w(uint32(0x02014b50))
		w(uint16(20))
		w(uint16(20))
		w(uint16(0))
		w(uint16(8))
		w(uint32(0))
		w(crc)
		w(uint32(len(comp)))
		w(uint32(len(data)))
		w(uint16(len(name)))
		w(uint16(0))
		w(uint16(0))
		w(uint16(0))
		w(uint16(0))
		w(uint32(0))
		w(uint32(0)) // every entry's local header is at offset 0
		b.WriteString(name)
	}
	cdSize := b.Len() - cdStart
	w(uint32(0x06054b50))
	w(uint16(0))
	w(uint16(0))
	w(uint16(n))
	w(uint16(n))
	w(uint32(cdSize))
	w(uint32(cdStart))
	w(uint16(0))
	return b.Bytes()
}

// synthBundle writes a small bundle that verifies, without a bus: n
// documents from G22 to H41 signed now, their links, a closing checkpoint,
// the certificates and the manifest, as Export lays them out.
func synthBundle(t testing.TB, n int) []byte {
	t.Helper()
	ca, err := signing.NewCA("synthetic CA", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id, err := ca.Issue(govOffice, "", signing.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	key, err := audit.NewKey(ca, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	m := audit.Manifest{Format: audit.BundleFormat, Created: time.Now().UTC(), Files: map[string]string{}}
	var links strings.Builder
	prev := audit.GenesisHash
	var last audit.Link
	stored := time.Now().UTC()
	for i := range n {
		e := envelope.New(govOffice, []string{ngheAn}, fmt.Sprintf("Công văn %d", i))
		raw, err := id.Seal(e)
		if err != nil {
			t.Fatal(err)
		}
		seq := uint64(i + 1)
		subject := record.DocSubject(ngheAn, govOffice)
		l := audit.NewLink(prev, seq, stored.Add(time.Duration(i)*time.Millisecond), subject, raw)
		j, _ := json.Marshal(l)
		links.Write(append(j, '\n'))
		prev, last = l.Hash, l
		files[audit.RecordFile(seq)] = raw
		m.Records = append(m.Records, audit.ManifestRecord{Seq: seq, File: audit.RecordFile(seq), Subject: subject, Stored: l.Time,
			Digest: l.Digest, ID: e.ID, Type: "document", From: govOffice, To: ngheAn, Verified: true})
	}
	files[audit.LinksFile] = []byte(links.String())
	m.Links = audit.ManifestLinks{File: audit.LinksFile, Count: n, First: 1, Last: uint64(n)}
	cp, err := key.Sign(audit.Checkpoint{Seq: last.Seq, Head: last.Hash, Time: time.Now(), Reason: "request"})
	if err != nil {
		t.Fatal(err)
	}
	cpFile := fmt.Sprintf("checkpoints/%020d.jws", cp.Seq)
	files[cpFile] = cp.Raw
	m.Checkpoints = []audit.ManifestCheckpoint{{File: cpFile, Role: "closing", Seq: cp.Seq, Head: cp.Head, Time: cp.Time}}
	files[audit.CAFile] = signing.EncodeCerts(ca.Cert)
	files[audit.AuditCAFile] = signing.EncodeCerts(key.Chain...)
	fp := envelope.Fingerprint(id.Certificate())
	agencyFile := fmt.Sprintf("certs/agency-%s-%s.pem", envelope.Token(govOffice), fp[:16])
	files[agencyFile] = signing.EncodeCerts(id.Chain...)
	m.Certificates = []audit.ManifestCertificate{
		{File: audit.CAFile, Role: "ca", Fingerprint: envelope.Fingerprint(ca.Cert)},
		{File: audit.AuditCAFile, Role: "audit", Fingerprint: envelope.Fingerprint(key.Certificate())},
		{File: agencyFile, Role: "agency", Agency: govOffice, Fingerprint: fp},
	}
	m.Covered = true
	names := make([]string, 0, len(files))
	for name, b := range files {
		s := sha256.Sum256(b)
		m.Files[name] = hex.EncodeToString(s[:])
		names = append(names, name)
	}
	mj, _ := json.MarshalIndent(m, "", "  ")
	files[audit.ManifestFile] = mj
	names = append(names, audit.ManifestFile)
	sort.Strings(names)
	var sums strings.Builder
	for _, name := range names {
		s := sha256.Sum256(files[name])
		fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(s[:]), name)
	}
	files[audit.SumsFile] = []byte(sums.String())
	names = append(names, audit.SumsFile)
	entries := make([]zipEntry, 0, len(names))
	for _, name := range names {
		entries = append(entries, zipEntry{name: name, data: files[name]})
	}
	return craftZip(t, entries...)
}
