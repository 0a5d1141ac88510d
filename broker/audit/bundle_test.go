package audit_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/audit"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
)

// bundleFiles is an unpacked bundle a test can tamper with.
type bundleFiles struct {
	names []string
	data  map[string][]byte
	m     audit.Manifest
}

func unpack(t *testing.T, b []byte) *bundleFiles {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	bf := &bundleFiles{data: map[string][]byte{}}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		d, _ := io.ReadAll(rc)
		rc.Close()
		bf.names = append(bf.names, f.Name)
		bf.data[f.Name] = d
	}
	if err := json.Unmarshal(bf.data[audit.ManifestFile], &bf.m); err != nil {
		t.Fatal(err)
	}
	return bf
}

func (bf *bundleFiles) remove(name string) {
	delete(bf.data, name)
	for i, n := range bf.names {
		if n == name {
			bf.names = append(bf.names[:i], bf.names[i+1:]...)
			return
		}
	}
}

// pack zips the files again; fix rewrites the manifest's digests and
// SHA256SUMS as an attacker covering his tracks would.
func (bf *bundleFiles) pack(t *testing.T, fix bool) []byte {
	t.Helper()
	if fix {
		bf.m.Files = map[string]string{}
		for _, n := range bf.names {
			if n != audit.ManifestFile && n != audit.SumsFile {
				s := sha256.Sum256(bf.data[n])
				bf.m.Files[n] = hex.EncodeToString(s[:])
			}
		}
		mj, _ := json.MarshalIndent(bf.m, "", "  ")
		bf.data[audit.ManifestFile] = mj
		var lines []string
		for _, n := range bf.names {
			if n != audit.SumsFile {
				s := sha256.Sum256(bf.data[n])
				lines = append(lines, hex.EncodeToString(s[:])+"  "+n)
			}
		}
		sort.Strings(lines)
		bf.data[audit.SumsFile] = []byte(strings.Join(lines, "\n") + "\n")
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range bf.names {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(bf.data[n])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func verifyBytes(b []byte, o audit.VerifyOptions) (*audit.Report, error) {
	return audit.VerifyBundle(context.Background(), bytes.NewReader(b), int64(len(b)), o)
}

// historyBundle builds a small history with documents, receipts and
// business statuses among three agencies and exports all of it.
func historyBundle(t *testing.T) (*auditBus, []byte, *audit.Manifest) {
	t.Helper()
	ab := startAuditBus(t)
	ctx := ctxT(t)
	id := ab.send(govOffice, ngheAn, sonLa)
	ab.send(ngheAn, govOffice)
	ab.send(sonLa, ngheAn)
	c := ab.Client(ngheAn)
	mb, err := c.Mailbox(ctx, ngheAn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Fetch(ctx, 0, 300*time.Millisecond, func(context.Context, *broker.Delivery) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Mark(ctx, ngheAn, id, envelope.StateAccepted, broker.MarkOptions{Note: "tiếp nhận"}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	m, err := ab.reader().Export(ctx, audit.ExportOptions{}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Records) < 6 || !m.Covered || len(m.Warnings) != 0 {
		t.Fatalf("manifest: %d records, covered %v, warnings %v", len(m.Records), m.Covered, m.Warnings)
	}
	return ab, buf.Bytes(), m
}

func TestBundleUntouchedVerifies(t *testing.T) {
	ab, b, m := historyBundle(t)
	for name, o := range map[string]audit.VerifyOptions{
		"bundled CA": {},
		"pinned CA":  {Roots: []*x509.Certificate{ab.CA.Cert}, RequireCoverage: true},
	} {
		rep, err := verifyBytes(b, o)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if rep.Records != len(m.Records) || rep.Verified != rep.Records || !rep.Covered || rep.Checkpoints == 0 {
			t.Fatalf("%s: report %+v", name, rep)
		}
	}
}

func TestBundleTamperingIsNamed(t *testing.T) {
	ab, b, m := historyBundle(t)
	rec := func(i int) audit.ManifestRecord { return m.Records[i] }
	otherCA, err := signing.NewCA("forged CA", time.Hour*24*365)
	if err != nil {
		t.Fatal(err)
	}
	imposter, err := ab.CA.Issue(govOffice, "imposter", signing.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	agencyCert := func() string {
		for _, c := range m.Certificates {
			if c.Role == "agency" && c.Agency == govOffice {
				return c.File
			}
		}
		t.Fatal("no agency certificate in the bundle")
		return ""
	}()
	tests := []struct {
		name    string
		tamper  func(bf *bundleFiles)
		fix     bool // the attacker also rewrites manifest digests and SHA256SUMS
		want    error
		seq     uint64
		file    string
		pinRoot bool
	}{{
		name: "one byte changed in a record",
		tamper: func(bf *bundleFiles) {
			d := bf.data[rec(2).File]
			d[len(d)/2] ^= 0x01
		},
		fix: true, want: audit.ErrRecordMismatch, seq: rec(2).Seq, file: rec(2).File,
	}, {
		name:   "one byte changed, manifest left alone",
		tamper: func(bf *bundleFiles) { bf.data[rec(1).File][10] ^= 0x02 },
		want:   audit.ErrRecordMismatch, seq: rec(1).Seq, file: rec(1).File,
	}, {
		name: "one record removed",
		tamper: func(bf *bundleFiles) {
			bf.remove(rec(3).File)
			bf.m.Records = append(bf.m.Records[:3:3], bf.m.Records[4:]...)
		},
		fix: true, want: audit.ErrMissingRecord, seq: rec(3).Seq,
	}, {
		name: "two records swapped",
		tamper: func(bf *bundleFiles) {
			a, c := rec(1).File, rec(4).File
			bf.data[a], bf.data[c] = bf.data[c], bf.data[a]
		},
		fix: true, want: audit.ErrRecordMismatch, seq: rec(1).Seq, file: rec(1).File,
	}, {
		name: "two links swapped",
		tamper: func(bf *bundleFiles) {
			lines := strings.Split(strings.TrimSpace(string(bf.data[audit.LinksFile])), "\n")
			lines[2], lines[3] = lines[3], lines[2]
			bf.data[audit.LinksFile] = []byte(strings.Join(lines, "\n") + "\n")
		},
		fix: true, want: audit.ErrChainBroken, file: audit.LinksFile,
	}, {
		name: "checkpoint signature broken",
		tamper: func(bf *bundleFiles) {
			f := bf.m.Checkpoints[len(bf.m.Checkpoints)-1].File
			d := bf.data[f]
			i := bytes.LastIndexByte(d, '.') + 5
			d[i] = map[bool]byte{true: 'B', false: 'A'}[d[i] == 'A']
		},
		fix: true, want: audit.ErrCheckpoint, file: m.Checkpoints[len(m.Checkpoints)-1].File,
	}, {
		name: "CA certificate swapped",
		tamper: func(bf *bundleFiles) {
			bf.data[audit.CAFile] = signing.EncodeCerts(otherCA.Cert)
		},
		fix: true, want: audit.ErrSignature, seq: rec(0).Seq, file: rec(0).File,
	}, {
		name: "CA certificate swapped, CA pinned",
		tamper: func(bf *bundleFiles) {
			bf.data[audit.CAFile] = signing.EncodeCerts(otherCA.Cert)
		},
		fix: true, pinRoot: true, want: audit.ErrCertificate, file: audit.CAFile,
	}, {
		name: "agency certificate swapped",
		tamper: func(bf *bundleFiles) {
			bf.data[agencyCert] = signing.EncodeCerts(imposter.Chain...)
		},
		fix: true, want: audit.ErrCertificate,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bf := unpack(t, bytes.Clone(b))
			for n, d := range bf.data {
				bf.data[n] = bytes.Clone(d)
			}
			tt.tamper(bf)
			o := audit.VerifyOptions{}
			if tt.pinRoot {
				o.Roots = []*x509.Certificate{ab.CA.Cert}
			}
			_, err := verifyBytes(bf.pack(t, tt.fix), o)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var p *audit.Problem
			if !errors.As(err, &p) {
				t.Fatalf("err %T is not a *audit.Problem", err)
			}
			if tt.seq != 0 && p.Seq != tt.seq {
				t.Errorf("names seq %d, want %d: %v", p.Seq, tt.seq, err)
			}
			if tt.file != "" && p.File != tt.file {
				t.Errorf("names file %q, want %q: %v", p.File, tt.file, err)
			}
			t.Log(err)
		})
	}
}

// bundleLinks decodes links.jsonl.
func bundleLinks(t *testing.T, b []byte) []audit.Link {
	t.Helper()
	var out []audit.Link
	for _, ln := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var l audit.Link
		if err := json.Unmarshal(ln, &l); err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

// encodeLinks writes links as links.jsonl.
func encodeLinks(ls []audit.Link) []byte {
	var b bytes.Buffer
	for _, l := range ls {
		j, _ := json.Marshal(l)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// cutLinks keeps the bundle's links and records keep accepts, and fixes the
// manifest's record list and link span to match.
func (bf *bundleFiles) cutLinks(t *testing.T, keep func(seq uint64) bool) {
	t.Helper()
	var recs []audit.ManifestRecord
	for _, r := range bf.m.Records {
		if keep(r.Seq) {
			recs = append(recs, r)
		} else {
			bf.remove(r.File)
		}
	}
	bf.m.Records = recs
	var ls []audit.Link
	for _, l := range bundleLinks(t, bf.data[audit.LinksFile]) {
		if keep(l.Seq) {
			ls = append(ls, l)
		}
	}
	bf.data[audit.LinksFile] = encodeLinks(ls)
	bf.m.Links.Count, bf.m.Links.First, bf.m.Links.Last = len(ls), ls[0].Seq, ls[len(ls)-1].Seq
}

// setCheckpoint replaces the bundle's checkpoint of role by cp.
func (bf *bundleFiles) setCheckpoint(role string, cp *audit.SignedCheckpoint) {
	var cps []audit.ManifestCheckpoint
	for _, c := range bf.m.Checkpoints {
		if c.Role == role {
			bf.remove(c.File)
			continue
		}
		cps = append(cps, c)
	}
	if cp != nil {
		name := fmt.Sprintf("checkpoints/%020d.jws", cp.Seq)
		bf.names = append(bf.names, name)
		bf.data[name] = cp.Raw
		cps = append(cps, audit.ManifestCheckpoint{File: name, Role: role, Seq: cp.Seq, Head: cp.Head, Time: cp.Time})
	}
	bf.m.Checkpoints = cps
}

// The first records of a range cut together with their links, the anchor
// removed or replaced by a genuine later checkpoint: the chain no longer
// starts before the range, and verify must say so.
func TestBundleStartOfRangeCutIsNamed(t *testing.T) {
	ab := startAuditBus(t)
	ab.send(govOffice, ngheAn)
	ab.checkpoint() // the anchor
	time.Sleep(20 * time.Millisecond)
	since := time.Now()
	time.Sleep(20 * time.Millisecond)
	ab.send(govOffice, ngheAn) // the record cut
	ab.send(sonLa, ngheAn)
	later := ab.checkpoint() // genuine, inside the range
	ab.send(ngheAn, govOffice)
	var buf bytes.Buffer
	if _, err := ab.reader().Export(ctxT(t), audit.ExportOptions{Query: audit.Query{Since: since}}, &buf); err != nil {
		t.Fatal(err)
	}
	pin := audit.VerifyOptions{Roots: []*x509.Certificate{ab.CA.Cert}, RequireCoverage: true}
	if _, err := verifyBytes(buf.Bytes(), pin); err != nil {
		t.Fatalf("untouched: %v", err)
	}
	for _, tt := range []struct {
		name   string
		anchor *audit.SignedCheckpoint
	}{
		{"anchor removed", nil},
		{"later checkpoint as anchor", later},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bf := unpack(t, buf.Bytes())
			bf.cutLinks(t, func(seq uint64) bool { return seq >= later.Seq })
			bf.setCheckpoint("anchor", tt.anchor)
			_, err := verifyBytes(bf.pack(t, true), pin)
			var p *audit.Problem
			if !errors.Is(err, audit.ErrChainBroken) || !errors.As(err, &p) || p.Seq != later.Seq || p.File != audit.LinksFile {
				t.Fatalf("err = %v, want %v at seq %d of %s", err, audit.ErrChainBroken, later.Seq, audit.LinksFile)
			}
			t.Log(err)
		})
	}
}

// The end of a closed range cut after a genuine checkpoint inside it: no
// checkpoint covers a link past the range's end any more, so the range is
// not covered (an error with --require-checkpoint). An open range is never
// proven at its end, and the report says so.
func TestBundleEndOfRangeCutIsNamed(t *testing.T) {
	ab := startAuditBus(t)
	since := time.Now()
	time.Sleep(20 * time.Millisecond)
	ab.send(govOffice, ngheAn)
	inside := ab.checkpoint()
	ab.send(sonLa, ngheAn) // the record cut
	time.Sleep(20 * time.Millisecond)
	until := time.Now()
	time.Sleep(20 * time.Millisecond)
	ab.send(ngheAn, govOffice)
	export := func(q audit.Query) []byte {
		var buf bytes.Buffer
		m, err := ab.reader().Export(ctxT(t), audit.ExportOptions{Query: q}, &buf)
		if err != nil {
			t.Fatal(err)
		}
		if !m.Covered {
			t.Fatalf("export of %+v not covered: %v", q, m.Warnings)
		}
		return buf.Bytes()
	}
	closed := export(audit.Query{Since: since, Until: until})
	pin := audit.VerifyOptions{Roots: []*x509.Certificate{ab.CA.Cert}, RequireCoverage: true}
	if rep, err := verifyBytes(closed, pin); err != nil || !rep.Covered || len(rep.Notes) != 0 {
		t.Fatalf("untouched: %v, covered %v, notes %q", err, rep.Covered, rep.Notes)
	}
	bf := unpack(t, closed)
	bf.cutLinks(t, func(seq uint64) bool { return seq <= inside.Seq })
	bf.setCheckpoint("closing", inside)
	cut := bf.pack(t, true)
	if _, err := verifyBytes(cut, pin); !errors.Is(err, audit.ErrNotCovered) {
		t.Errorf("cut, --require-checkpoint: err = %v, want %v", err, audit.ErrNotCovered)
	}
	rep, err := verifyBytes(cut, audit.VerifyOptions{Roots: pin.Roots})
	if err != nil || rep.Covered || len(rep.Notes) != 1 || !strings.HasPrefix(rep.Notes[0], "NOT COVERED: ") {
		t.Errorf("cut: err %v, covered %v, notes %q; want NOT COVERED", err, rep.Covered, rep.Notes)
	}

	rep, err = verifyBytes(export(audit.Query{Since: since}), pin)
	if err != nil || !rep.Covered || len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "the range has no end") {
		t.Errorf("open range: err %v, covered %v, notes %q; want a note that its end is not proven", err, rep.Covered, rep.Notes)
	}
}

// addSignedRecord appends to the bundle a document from govOffice to ngheAn
// signed with key and chain, its link, a checkpoint of the audit key over
// it (an insider holding the audit key), and chain as an agency
// certificate the manifest binds to govOffice. It returns the record's
// seq and the certificate's file.
func (bf *bundleFiles) addSignedRecord(t *testing.T, ab *auditBus, key crypto.Signer, chain []*x509.Certificate) (uint64, string) {
	t.Helper()
	links := bundleLinks(t, bf.data[audit.LinksFile])
	last := links[len(links)-1]
	e := envelope.New(govOffice, []string{ngheAn}, "Forged by the operator")
	payload, _ := json.Marshal(e)
	raw, err := envelope.Sign(payload, key, chain)
	if err != nil {
		t.Fatal(err)
	}
	seq, subj := last.Seq+1, "axis.doc."+envelope.Token(ngheAn)+"."+envelope.Token(govOffice)
	l := audit.NewLink(last.Hash, seq, time.Now(), subj, raw)
	bf.data[audit.LinksFile] = encodeLinks(append(links, l))
	bf.m.Links.Count, bf.m.Links.Last = len(links)+1, seq
	rf := audit.RecordFile(seq)
	bf.names = append(bf.names, rf)
	bf.data[rf] = raw
	bf.m.Records = append(bf.m.Records, audit.ManifestRecord{Seq: seq, File: rf, Subject: subj, Stored: l.Time, Digest: l.Digest,
		ID: e.ID, Type: "document", From: govOffice, To: ngheAn, Verified: true})
	fp := envelope.Fingerprint(chain[0])
	cf := "certs/agency-" + envelope.Token(govOffice) + "-" + fp[:16] + ".pem"
	bf.names = append(bf.names, cf)
	bf.data[cf] = signing.EncodeCerts(chain...)
	bf.m.Certificates = append(bf.m.Certificates, audit.ManifestCertificate{File: cf, Role: "agency", Agency: govOffice, Fingerprint: fp})
	cp, err := ab.key.Sign(audit.Checkpoint{Seq: seq, Head: l.Hash, Time: time.Now(), Reason: "request"})
	if err != nil {
		t.Fatal(err)
	}
	bf.setCheckpoint("closing", cp)
	return seq, cf
}

// The manifest is not signed: it binds a certificate that names no agency
// (imported) to one, but never a certificate of the bus's own services,
// and a record that rests on such a binding is named in the report.
func TestBundleManifestBindsNoServiceCertificate(t *testing.T) {
	ab, b, _ := historyBundle(t)
	issue := func(p signing.Purpose, subject string) (crypto.Signer, []*x509.Certificate) {
		k, chain, err := signing.IssueKey(ab.CA, p, subject, signing.KeyECDSA, signing.IssueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return k, chain
	}
	system, err := ab.CA.IssueSystem("dms1", "DMS", signing.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pin := audit.VerifyOptions{Roots: []*x509.Certificate{ab.CA.Cert}, RequireCoverage: true}
	for _, tt := range []struct {
		name  string
		key   func() (crypto.Signer, []*x509.Certificate)
		bound bool // the binding holds (on the bus's word)
	}{
		{"audit key", func() (crypto.Signer, []*x509.Certificate) { return ab.key.Signer, ab.key.Chain }, false},
		{"time-stamping key", func() (crypto.Signer, []*x509.Certificate) { return issue(signing.PurposeTimeStamping, "") }, false},
		{"bus key", func() (crypto.Signer, []*x509.Certificate) { return issue(signing.PurposeBus, "HN") }, false},
		{"TLS server key", func() (crypto.Signer, []*x509.Certificate) { return issue(signing.PurposeTLS, "") }, false},
		{"document system key", func() (crypto.Signer, []*x509.Certificate) { return system.Key, system.Chain }, false},
		{"imported agency key", func() (crypto.Signer, []*x509.Certificate) { return importedCert(t, ab.CA) }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bf := unpack(t, b)
			key, chain := tt.key()
			seq, cf := bf.addSignedRecord(t, ab, key, chain)
			rep, err := verifyBytes(bf.pack(t, true), pin)
			res := rep.Results[len(rep.Results)-1]
			if res.Seq != seq {
				t.Fatalf("last result is seq %d, want %d", res.Seq, seq)
			}
			if tt.bound {
				if err != nil || !res.Verified || rep.BusBound != 1 || !slices.ContainsFunc(rep.Notes, func(n string) bool {
					return strings.HasPrefix(n, fmt.Sprintf("seq %d: ", seq)) && strings.Contains(n, "the bus's word")
				}) {
					t.Fatalf("err %v, verified %v, bus-bound %d, notes %q: want verified, on the bus's word", err, res.Verified, rep.BusBound, rep.Notes)
				}
				return
			}
			if err == nil || res.Verified || rep.BusBound != 0 {
				t.Fatalf("err %v, verified %v: a record signed with a %s verifies as %s's", err, res.Verified, tt.name, govOffice)
			}
			if !slices.ContainsFunc(rep.Problems, func(p *audit.Problem) bool { return p.File == cf && errors.Is(p, audit.ErrCertificate) }) {
				t.Errorf("no certificate problem names %s: %v", cf, rep.Problems)
			}
			t.Log(err)
		})
	}
}

// importedCert is a certificate from ca that names no agency, as one
// imported with agency add --import-cert.
func importedCert(t *testing.T, ca *signing.CA) (crypto.Signer, []*x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "imported signer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, []*x509.Certificate{leaf, ca.Cert}
}

// A bundle exported with attachments must hold every attachment its
// verified envelopes list: one removed with its manifest entry is named,
// one the export said it could not include is noted.
func TestBundleMissingAttachmentIsNamed(t *testing.T) {
	ab := startAuditBus(t)
	text := "Kế hoạch kiểm tra năm 2026"
	if _, err := ab.Client(govOffice).Send(ctxT(t), envelope.New(govOffice, []string{ngheAn}, "Kế hoạch"),
		broker.File{Name: "kehoach.txt", Reader: strings.NewReader(text), Size: int64(len(text))}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	m, err := ab.reader().Export(ctxT(t), audit.ExportOptions{Attachments: true}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Attachments) != 1 {
		t.Fatalf("attachments %+v, warnings %v", m.Attachments, m.Warnings)
	}
	a := m.Attachments[0]
	if rep, err := verifyBytes(buf.Bytes(), audit.VerifyOptions{RequireCoverage: true}); err != nil || rep.Attachments != 1 {
		t.Fatalf("untouched: %v, %d attachments", err, rep.Attachments)
	}
	for _, tt := range []struct {
		name    string
		warning string // the manifest's warning about it
		want    error
	}{
		{"removed", "", audit.ErrBundle},
		{"not included at export", fmt.Sprintf("attachment %s (%s) not included: object not found", a.Name, a.SHA256), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bf := unpack(t, buf.Bytes())
			bf.remove(a.File)
			bf.m.Attachments = nil
			if tt.warning != "" {
				bf.m.Warnings = append(bf.m.Warnings, tt.warning)
			}
			rep, err := verifyBytes(bf.pack(t, true), audit.VerifyOptions{RequireCoverage: true})
			if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tt.want == nil && !slices.ContainsFunc(rep.Notes, func(n string) bool { return strings.Contains(n, a.SHA256) }) {
				t.Errorf("notes %q name no attachment %s", rep.Notes, a.SHA256)
			}
		})
	}
}

// A link's recorded time is earlier than its stored time, or absent: the
// chainer never writes a later one, which would move the window the
// signature is judged in.
func TestBundleRecordedAfterStoredIsNamed(t *testing.T) {
	ab, b, _ := historyBundle(t)
	bf := unpack(t, b)
	links := bundleLinks(t, bf.data[audit.LinksFile])
	// Rewritten from the changed link on and checkpointed again, as an
	// insider holding the audit key would.
	l := &links[1]
	l.Recorded = l.Time.Add(time.Hour)
	l.Hash = l.ComputeHash()
	for i := 2; i < len(links); i++ {
		links[i].Prev = links[i-1].Hash
		links[i].Hash = links[i].ComputeHash()
	}
	bf.data[audit.LinksFile] = encodeLinks(links)
	for i := range bf.m.Records {
		if bf.m.Records[i].Seq == l.Seq {
			bf.m.Records[i].Recorded = l.Recorded
		}
	}
	last := links[len(links)-1]
	cp, err := ab.key.Sign(audit.Checkpoint{Seq: last.Seq, Head: last.Hash, Time: time.Now(), Reason: "request"})
	if err != nil {
		t.Fatal(err)
	}
	bf.setCheckpoint("closing", cp)
	_, err = verifyBytes(bf.pack(t, true), audit.VerifyOptions{})
	var p *audit.Problem
	if !errors.As(err, &p) || !errors.Is(err, audit.ErrChainBroken) || p.Seq != l.Seq || !strings.Contains(err.Error(), "not before its stored time") {
		t.Fatalf("err = %v, want %v naming seq %d's recorded time", err, audit.ErrChainBroken, l.Seq)
	}
}
