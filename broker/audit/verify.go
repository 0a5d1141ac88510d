package audit

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
)

// VerifyOptions adjusts VerifyBundle.
type VerifyOptions struct {
	// Roots pins the trust anchors; without it the bundle's certs/ca.pem is
	// used (and its fingerprint reported, to compare with the one published
	// by the operator).
	Roots []*x509.Certificate
	// RequireCoverage makes a range whose end no valid signed checkpoint
	// covers a problem instead of a note: its last link, and for a range
	// with an end a link stored at or after it.
	RequireCoverage bool
	// Workers checking signatures in parallel (default GOMAXPROCS).
	Workers int
	// Limits bound what is read of the zip (zero: the defaults).
	Limits VerifyLimits
	// TSARoots pins the roots trusted for time-stamps of an evidence
	// package; without it the package's certs/tsa-ca.pem (its fingerprint
	// reported, to compare with the TSA's published one).
	TSARoots []*x509.Certificate
	// TokenSkew is how far a token's time may lie before the checkpoint it
	// covers (default signing.MaxSkew, 10 minutes).
	TokenSkew time.Duration
}

// Report is the outcome of VerifyBundle.
type Report struct {
	Format  string        `json:"format"`
	Query   ManifestQuery `json:"query"`
	Records int           `json:"records"`
	// Verified counts records whose signature and certificate chain hold.
	Verified int `json:"verified"`
	// BusBound counts the verified records whose certificate names no
	// agency (imported): that it is the sender's rests on the manifest,
	// the bus's word, and a note names each.
	BusBound int `json:"bus_bound,omitempty"`
	// RecordedInvalid counts records that were already invalid when the
	// bus stored them (the bundle says so and the check agrees): they are
	// faithful copies of bad input, not tampering.
	RecordedInvalid int    `json:"recorded_invalid"`
	Links           int    `json:"links"`
	FirstLink       uint64 `json:"first_link,omitempty"`
	LastLink        uint64 `json:"last_link,omitempty"`
	Checkpoints     int    `json:"checkpoints"`
	// Covered is true when a valid checkpoint covers the range's last link
	// and, when the range has an end, a link stored at or after it (which
	// proves that nothing of the range was cut after the last record);
	// CoveredThrough is the highest sequence a valid checkpoint covers.
	Covered        bool     `json:"covered"`
	CoveredThrough uint64   `json:"covered_through,omitempty"`
	CAFingerprints []string `json:"ca_fingerprints"`
	Attachments    int      `json:"attachments"`
	// Results has one entry per record, in stream order.
	Results []RecordResult `json:"results"`
	// Timestamps are the evidence package's verified tokens.
	Timestamps      []ManifestTimestamp `json:"timestamps,omitempty"`
	TSAFingerprints []string            `json:"tsa_ca_fingerprints,omitempty"`
	Problems        []*Problem          `json:"problems,omitempty"`
	Notes           []string            `json:"notes,omitempty"`
}

// RecordResult is the offline verdict on one record.
type RecordResult struct {
	Seq    uint64    `json:"seq"`
	File   string    `json:"file"`
	ID     string    `json:"id,omitempty"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Type   string    `json:"type"`
	Stored time.Time `json:"stored"`
	// Recorded is the time the signature was judged at (see
	// Link.RecordedAt).
	Recorded time.Time `json:"recorded"`
	Verified bool      `json:"verified"`
	Reason   string    `json:"reason,omitempty"`
}

// Err returns the first problem (by record sequence), nil when the bundle
// verified.
func (r *Report) Err() error {
	if len(r.Problems) == 0 {
		return nil
	}
	return r.Problems[0]
}

// VerifyBundleFile verifies the bundle at path; see VerifyBundle.
func VerifyBundleFile(ctx context.Context, path string, o VerifyOptions) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("verify bundle: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("verify bundle: %w", err)
	}
	return VerifyBundle(ctx, f, st.Size(), o)
}

// VerifyBundle checks an evidence bundle offline: every file's SHA-256
// against the manifest, each record's bytes, subject and times against its
// chain link, the chain's continuity from its anchor, the checkpoints'
// signatures and heads, that every record of the range the chain names is
// present, each record's JWS signature and certificate chain as the
// mailbox judged it at the time the bus recorded it, and the certificate
// files. Before it reads anything it checks the zip's directory against
// o.Limits and refuses a bundle over them with a *LimitError, and one with
// entries no bundle writer makes (unsafe names, shared data) with
// ErrBundle. It returns the report and, when anything is wrong, the first
// problem as error (a *Problem wrapping one of the package's sentinel
// errors).
func VerifyBundle(ctx context.Context, ra io.ReaderAt, size int64, o VerifyOptions) (*Report, error) {
	zr, err := zip.NewReader(ra, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, fmt.Errorf("%w: not a zip file: %v", ErrBundle, err)
	}
	files, err := checkEntries(zr, size, o.Limits.withDefaults())
	if err != nil {
		return &Report{}, err
	}
	v := &bundleVerifier{o: o, files: files, rep: &Report{}}
	if err := v.run(ctx); err != nil {
		return v.rep, err
	}
	sort.SliceStable(v.rep.Problems, func(i, j int) bool {
		a, b := v.rep.Problems[i], v.rep.Problems[j]
		if sa, sb := seqKey(a), seqKey(b); sa != sb {
			return sa < sb
		}
		return rank(a) < rank(b)
	})
	return v.rep, v.rep.Err()
}

func seqKey(p *Problem) uint64 {
	if p.Seq == 0 {
		return math.MaxUint64
	}
	return p.Seq
}

// rank orders problems of one record: what the chain says first.
func rank(p *Problem) int {
	switch {
	case errors.Is(p.Err, ErrRecordMismatch), errors.Is(p.Err, ErrMissingRecord), errors.Is(p.Err, ErrUnlinkedRecord), errors.Is(p.Err, ErrChainBroken):
		return 0
	case errors.Is(p.Err, ErrSignature), errors.Is(p.Err, ErrCertificate), errors.Is(p.Err, ErrCheckpoint):
		return 1
	}
	return 2
}

type bundleVerifier struct {
	o     VerifyOptions
	rep   *Report
	files map[string]*zip.File
	m     Manifest
	sums  map[string]string // computed SHA-256 per file
	roots []*x509.Certificate
	links map[uint64]*Link
	order []uint64 // link seqs in file order
	envs  map[uint64]*envelope.Envelope
	// segStarts are the first links of an evidence package's segments.
	segStarts []uint64
	cpRaw     map[uint64][]byte // valid checkpoints by seq
	cpTime    map[uint64]time.Time
}

func (v *bundleVerifier) evidence() bool { return v.m.Format == EvidenceFormat }

func (v *bundleVerifier) problem(seq uint64, file string, sentinel error, format string, args ...any) {
	v.rep.Problems = append(v.rep.Problems, newProblem(seq, file, sentinel, format, args...))
}

func (v *bundleVerifier) read(name string) ([]byte, error) {
	f, ok := v.files[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s: not in the bundle", ErrBundle, name)
	}
	rc, err := limitedOpen(f)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBundle, name, err)
	}
	defer rc.Close()
	// The declared size, as far as it is a sane first guess: with the
	// limits lifted it is whatever the zip says.
	b := make([]byte, 0, min(f.UncompressedSize64, 16<<20))
	b, err = readAll(rc, b)
	if errors.Is(err, ErrBundle) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBundle, name, err)
	}
	return b, nil
}

func (v *bundleVerifier) run(ctx context.Context) error {
	mj, err := v.read(ManifestFile)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(mj))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v.m); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBundle, ManifestFile, err)
	}
	if v.m.Format != BundleFormat && v.m.Format != BundleFormatV1 && v.m.Format != EvidenceFormat {
		return fmt.Errorf("%w: format %q, this verifier reads %s, %s and %s", ErrBundle, v.m.Format, BundleFormat, BundleFormatV1, EvidenceFormat)
	}
	v.rep.Format, v.rep.Query = v.m.Format, v.m.Query
	if err := v.checkDigests(ctx, mj); err != nil {
		return err
	}
	if err := v.loadRoots(); err != nil {
		return err
	}
	v.checkLinks()
	v.checkCheckpoints()
	if err := v.checkRecords(ctx); err != nil {
		return err
	}
	if v.evidence() {
		v.checkTimestamps()
	} else {
		v.checkCompleteness()
	}
	v.checkAttachments()
	return nil
}

func recordSeqOf(name string) uint64 {
	if !strings.HasPrefix(name, "records/") {
		return 0
	}
	n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, "records/"), ".jws"), 10, 64)
	return n
}

// checkDigests compares every file with the manifest and SHA256SUMS.
func (v *bundleVerifier) checkDigests(ctx context.Context, manifest []byte) error {
	v.sums = map[string]string{ManifestFile: sha256hex(manifest)}
	names := make([]string, 0, len(v.files))
	for n := range v.files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		if n == ManifestFile {
			continue
		}
		f := v.files[n]
		rc, err := limitedOpen(f)
		if err != nil {
			v.problem(recordSeqOf(n), n, ErrBundle, "cannot read: %v", err)
			continue
		}
		h := sha256.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil {
			v.problem(recordSeqOf(n), n, ErrBundle, "cannot read: %v", err)
			continue
		}
		v.sums[n] = hex.EncodeToString(h.Sum(nil))
		if n == SumsFile {
			continue
		}
		want, ok := v.m.Files[n]
		switch {
		case !ok:
			v.problem(recordSeqOf(n), n, ErrBundle, "file not listed in the manifest")
		case want != v.sums[n]:
			v.problem(recordSeqOf(n), n, ErrBundle, "SHA-256 is %s, the manifest says %s", v.sums[n], want)
		}
	}
	for n := range v.m.Files {
		if _, ok := v.files[n]; !ok {
			sentinel := ErrBundle
			if recordSeqOf(n) != 0 {
				sentinel = ErrMissingRecord
			}
			v.problem(recordSeqOf(n), n, sentinel, "listed in the manifest, missing from the bundle")
		}
	}
	if _, ok := v.files[SumsFile]; ok {
		b, err := v.read(SumsFile)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			sum, name, ok := strings.Cut(sc.Text(), "  ")
			if !ok {
				v.problem(0, SumsFile, ErrBundle, "line %q is not '<sha256>  <file>'", sc.Text())
				continue
			}
			if got, have := v.sums[name]; have && got != sum {
				v.problem(recordSeqOf(name), name, ErrBundle, "SHA-256 is %s, %s says %s", got, SumsFile, sum)
			}
		}
	}
	return nil
}

func (v *bundleVerifier) loadRoots() error {
	var bundled []*x509.Certificate
	if b, err := v.read(CAFile); err == nil {
		if bundled, err = signing.ParseCerts(b); err != nil {
			v.problem(0, CAFile, ErrCertificate, "%v", err)
		}
	} else {
		v.problem(0, CAFile, ErrCertificate, "no CA certificate in the bundle")
	}
	v.roots = bundled
	if len(v.o.Roots) > 0 {
		v.roots = v.o.Roots
		for _, c := range bundled {
			if !slices.ContainsFunc(v.o.Roots, c.Equal) {
				v.problem(0, CAFile, ErrCertificate, "CA %q (SHA-256 %s) is not the pinned CA", c.Subject.CommonName, envelope.Fingerprint(c))
			}
		}
	}
	for _, c := range v.roots {
		v.rep.CAFingerprints = append(v.rep.CAFingerprints, envelope.Fingerprint(c))
	}
	if len(v.roots) == 0 {
		return fmt.Errorf("%w: no trust root to verify against", ErrCertificate)
	}
	return nil
}

// checkLinks verifies each link's hash and the chain's continuity.
func (v *bundleVerifier) checkLinks() {
	v.links = map[uint64]*Link{}
	f, ok := v.files[LinksFile]
	if !ok {
		v.problem(0, LinksFile, ErrChainBroken, "no chain links in the bundle")
		return
	}
	// Streamed: only the decoded links stay in memory.
	rc, err := limitedOpen(f)
	if err != nil {
		v.problem(0, LinksFile, ErrBundle, "cannot read: %v", err)
		return
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var prev *Link
	line := 0
	for sc.Scan() {
		line++
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var l Link
		d := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		d.DisallowUnknownFields()
		if err := d.Decode(&l); err != nil {
			v.problem(0, LinksFile, ErrChainBroken, "line %d: %v", line, err)
			return
		}
		if !l.Valid() {
			v.problem(l.Seq, LinksFile, ErrChainBroken, "line %d: link of seq %d has hash %s, its content hashes to %s", line, l.Seq, l.Hash, l.ComputeHash())
		}
		if !l.Recorded.IsZero() && !l.Recorded.Before(l.Time) {
			// The chainer sets a recorded time only when it is earlier
			// (Link.WithRecorded): a later one would move the window the
			// signature is judged in.
			v.problem(l.Seq, LinksFile, ErrChainBroken, "line %d: link of seq %d says recorded %s, not before its stored time %s",
				line, l.Seq, l.Recorded.UTC().Format(time.RFC3339Nano), l.Time.UTC().Format(time.RFC3339Nano))
		}
		if prev != nil && v.evidence() && l.Prev != prev.Hash && l.Seq > prev.Seq+1 {
			// A new segment of an evidence package: it must start at an
			// anchor checkpoint's head (checked with the checkpoints).
			v.segStarts = append(v.segStarts, l.Seq)
			prev = nil
		}
		if prev == nil && v.evidence() && len(v.segStarts) == 0 {
			v.segStarts = append(v.segStarts, l.Seq)
		}
		if prev != nil {
			switch {
			case l.Prev != prev.Hash:
				v.problem(l.Seq, LinksFile, ErrChainBroken, "line %d: chain broken between seq %d and seq %d: prev is %s, the link before hashes to %s",
					line, prev.Seq, l.Seq, l.Prev, prev.Hash)
			case l.Seq <= prev.Seq:
				v.problem(l.Seq, LinksFile, ErrChainBroken, "line %d: seq %d after seq %d (out of order)", line, l.Seq, prev.Seq)
			case l.Seq != prev.Seq+1:
				v.rep.Notes = append(v.rep.Notes, fmt.Sprintf("stream sequences %d to %d were already gone when the chain was built (expired or deleted before linking)", prev.Seq+1, l.Seq-1))
			}
		}
		if _, dup := v.links[l.Seq]; dup {
			v.problem(l.Seq, LinksFile, ErrChainBroken, "line %d: a second link for seq %d", line, l.Seq)
		}
		lc := l
		v.links[l.Seq] = &lc
		v.order = append(v.order, l.Seq)
		prev = &lc
	}
	if err := sc.Err(); err != nil {
		v.problem(0, LinksFile, ErrChainBroken, "%v", err)
	}
	v.rep.Links = len(v.order)
	if len(v.order) > 0 {
		v.rep.FirstLink, v.rep.LastLink = v.order[0], v.order[len(v.order)-1]
	}
}

// checkCheckpoints verifies each checkpoint and that the chain starts at
// the anchor's head.
func (v *bundleVerifier) checkCheckpoints() {
	anchored := false
	seen := map[string]bool{}
	for _, mc := range v.m.Checkpoints {
		if seen[mc.File] {
			v.problem(0, mc.File, ErrBundle, "the manifest lists checkpoint %s twice", mc.File)
			continue
		}
		seen[mc.File] = true
		raw, err := v.read(mc.File)
		if err != nil {
			v.problem(0, mc.File, ErrCheckpoint, "%v", err)
			continue
		}
		cp, err := VerifyCheckpoint(raw, v.roots)
		if err != nil {
			v.rep.Problems = append(v.rep.Problems, problemFrom(0, mc.File, ErrCheckpoint, err))
			continue
		}
		if cp.Seq != mc.Seq || cp.Head != mc.Head {
			v.problem(0, mc.File, ErrCheckpoint, "signed for seq %d head %s, the manifest says seq %d head %s", cp.Seq, cp.Head, mc.Seq, mc.Head)
		}
		l := v.links[cp.Seq]
		if l == nil {
			v.problem(0, mc.File, ErrCheckpoint, "its head is seq %d, which is not among the bundle's links (%d to %d)", cp.Seq, v.rep.FirstLink, v.rep.LastLink)
			continue
		}
		if l.Hash != cp.Head {
			v.problem(cp.Seq, mc.File, ErrChainBroken, "the checkpoint signed head %s for seq %d, the bundle's link of seq %d hashes to %s", cp.Head, cp.Seq, cp.Seq, l.Hash)
			continue
		}
		v.rep.Checkpoints++
		if v.cpRaw == nil {
			v.cpRaw, v.cpTime = map[uint64][]byte{}, map[uint64]time.Time{}
		}
		v.cpRaw[cp.Seq], v.cpTime[cp.Seq] = raw, cp.Time
		if v.evidence() {
			continue // coverage comes from the time-stamps
		}
		v.rep.CoveredThrough = max(v.rep.CoveredThrough, cp.Seq)
		if len(v.order) > 0 && cp.Seq == v.order[0] {
			anchored = true
		}
	}
	if len(v.order) > 0 && !v.evidence() {
		v.checkAnchor(anchored)
	}
}

// checkAnchor: the links of a range bundle must start where nothing of the
// range can have been cut before them, at the chain's start or at the head
// of a valid checkpoint stored before the range. Otherwise the first links
// and their records could have been removed, and a later genuine
// checkpoint passed off as the anchor.
func (v *bundleVerifier) checkAnchor(anchored bool) {
	first := v.links[v.order[0]]
	if first.Prev == GenesisHash {
		return
	}
	if !anchored {
		v.problem(first.Seq, LinksFile, ErrChainBroken, "the chain in the bundle starts at seq %d, which is neither the head of a valid signed checkpoint of the bundle nor the chain's start: links and records before it may have been removed", first.Seq)
		return
	}
	if since := v.m.Query.Since; !first.Time.Before(since) {
		start := "the chain's start"
		if !since.IsZero() {
			start = since.UTC().Format(time.RFC3339Nano)
		}
		v.problem(first.Seq, LinksFile, ErrChainBroken, "the chain in the bundle starts at seq %d (a checkpoint's head, stored %s), not before the range's start (%s): records of the range stored before it may have been removed with their links",
			first.Seq, first.Time.UTC().Format(time.RFC3339Nano), start)
	}
}

// inRange tells whether a link belongs to the exported range.
func (v *bundleVerifier) inRange(l *Link) bool {
	q := v.m.Query
	return matchesAgency(l.Subject, q.Agency) && !l.Time.Before(q.Since) && (q.Until.IsZero() || l.Time.Before(q.Until))
}

// checkRecords checks every record against its link and re-verifies its
// signature offline, as of its signing time.
func (v *bundleVerifier) checkRecords(ctx context.Context) error {
	trust := signing.NewTrust(v.roots...)
	bound := map[string]bool{}
	agencyCerts := map[string]string{} // leaf fingerprint -> agency
	busBound := map[string]string{}    // leaf fingerprint -> agency only the manifest binds
	seen := map[string]bool{}
	once := func(mc ManifestCertificate) bool {
		if seen[mc.File] {
			v.problem(0, mc.File, ErrBundle, "the manifest lists %s twice", mc.File)
			return false
		}
		seen[mc.File] = true
		return true
	}
	for _, mc := range v.m.Certificates {
		if mc.Role != "agency" || !once(mc) {
			continue
		}
		b, err := v.read(mc.File)
		if err != nil {
			v.problem(0, mc.File, ErrCertificate, "%v", err)
			continue
		}
		chain, err := signing.ParseCerts(b)
		if err != nil {
			v.problem(0, mc.File, ErrCertificate, "%v", err)
			continue
		}
		fp := envelope.Fingerprint(chain[0])
		if fp != mc.Fingerprint {
			v.problem(0, mc.File, ErrCertificate, "holds certificate %s, the manifest says %s", fp, mc.Fingerprint)
		}
		if a := signing.AgencyOf(chain[0]); a != "" {
			bound[a] = true
			if mc.Agency != "" && a != mc.Agency {
				v.problem(0, mc.File, ErrCertificate, "certificate binds agency %s, the manifest says %s", a, mc.Agency)
			}
		} else if what := signing.ServiceOf(chain[0]); what != "" && mc.Agency != "" {
			// The manifest is not signed: it must not make a key of the
			// bus's own services sign as an agency.
			v.problem(0, mc.File, ErrCertificate, "is a %s certificate, the manifest binds it to agency %s: it can never sign for an agency", what, mc.Agency)
		} else if mc.Agency != "" {
			// An imported certificate the operator bound to an agency: the
			// binding is the bus's word (its directory), not the CA's.
			trust.Bind(mc.Agency, chain[0])
			bound[mc.Agency] = true
			busBound[fp] = mc.Agency
		}
		if err := trust.VerifyChain(chain, chain[0].NotBefore.Add(time.Second)); err != nil {
			v.problem(0, mc.File, ErrCertificate, "%v", err)
		}
		agencyCerts[fp] = mc.Agency
	}
	// Revocations as the bus knew them: a CRL counts only if a root of the
	// bundle (or the pinned roots) signed it.
	for _, mc := range v.m.Certificates {
		if mc.Role != "crl" || !once(mc) {
			continue
		}
		der, err := v.read(mc.File)
		if err == nil {
			_, err = trust.ApplyCRL(der)
		}
		if err != nil {
			v.problem(0, mc.File, ErrCertificate, "revocation list: %v", err)
		}
	}
	verifier := &signing.Verifier{Trust: trust, Validate: []envelope.ValidateOption{envelope.AllowCodes(func(c string) bool { return bound[c] })}}

	recs := make([]*Record, len(v.m.Records))
	var prevSeq uint64
	for i, mr := range v.m.Records {
		// Each record file is read once: a manifest naming one file many
		// times must not make the verifier decompress it again and again.
		if mr.Seq <= prevSeq {
			v.problem(mr.Seq, mr.File, ErrBundle, "listed after seq %d: records are not in stream order", prevSeq)
			continue
		}
		prevSeq = mr.Seq
		if mr.File != RecordFile(mr.Seq) {
			v.problem(mr.Seq, mr.File, ErrBundle, "record of seq %d should be %s", mr.Seq, RecordFile(mr.Seq))
			continue
		}
		raw, err := v.read(mr.File)
		if err != nil {
			continue // named by checkDigests
		}
		// The times and subject the chain vouches for, not the manifest's.
		stored, recorded, subject := mr.Stored, mr.Stored, mr.Subject
		l := v.links[mr.Seq]
		if l != nil {
			stored, recorded, subject = l.Time, l.RecordedAt(), l.Subject
		}
		rec := newRecord(mr.Seq, stored, recorded, subject, raw)
		recs[i] = rec
		switch {
		case l == nil:
			v.problem(mr.Seq, mr.File, ErrUnlinkedRecord, "no link of the bundle's chain (seq %d to %d) names seq %d", v.rep.FirstLink, v.rep.LastLink, mr.Seq)
		case l.Digest != rec.Digest:
			v.problem(mr.Seq, mr.File, ErrRecordMismatch, "SHA-256 of the record is %s, its chain link says %s", rec.Digest, l.Digest)
		case mr.Subject != l.Subject || !mr.Stored.Equal(l.Time):
			v.problem(mr.Seq, mr.File, ErrRecordMismatch, "the manifest says %s stored %s, the chain link says %s stored %s",
				mr.Subject, mr.Stored.Format(time.RFC3339Nano), l.Subject, l.Time.Format(time.RFC3339Nano))
		case !l.Recorded.IsZero() && !mr.Recorded.Equal(l.Recorded):
			v.problem(mr.Seq, mr.File, ErrRecordMismatch, "the manifest says recorded %s, the chain link says recorded %s",
				timeOrStored(mr.Recorded), l.Recorded.Format(time.RFC3339Nano))
		case l.Recorded.IsZero() && !mr.Recorded.IsZero():
			// A copy from another bus linked by a chainer that did not keep
			// recorded times: the manifest's word alone does not count.
			v.rep.Notes = append(v.rep.Notes, fmt.Sprintf("seq %d: the manifest says recorded %s (a copy from another bus), its chain link does not: judged at the stored time %s",
				mr.Seq, mr.Recorded.Format(time.RFC3339Nano), l.Time.Format(time.RFC3339Nano)))
		}
	}
	// Signatures: the costly part, in parallel.
	workers := v.o.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	next := make(chan *Record)
	cache := newOpenCache(1024)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for r := range next {
				verifyRecordCached(verifier, r, cache)
			}
		})
	}
	for _, r := range recs {
		if r == nil {
			continue
		}
		select {
		case next <- r:
		case <-ctx.Done():
			close(next)
			wg.Wait()
			return ctx.Err()
		}
	}
	close(next)
	wg.Wait()
	v.envs = map[uint64]*envelope.Envelope{}
	for i, r := range recs {
		mr := v.m.Records[i]
		if r == nil {
			continue
		}
		if r.Verified {
			v.envs[r.Seq] = r.Envelope
		}
		v.rep.Records++
		v.rep.Results = append(v.rep.Results, RecordResult{Seq: r.Seq, File: mr.File, ID: r.ID, From: r.From, To: r.To, Type: r.Type,
			Stored: r.Stored, Recorded: r.Recorded, Verified: r.Verified, Reason: r.Reason})
		if fp := r.SignerCert; r.Verified && busBound[fp] != "" {
			v.rep.BusBound++
			v.rep.Notes = append(v.rep.Notes, fmt.Sprintf("seq %d: signed with certificate %s (%q), which names no agency: that it is agency %s's rests on the bus's word (the manifest, from its directory), not on the CA",
				r.Seq, fp, r.Signer, busBound[fp]))
		}
		switch {
		case r.Verified:
			v.rep.Verified++
			if !mr.Verified {
				v.rep.Notes = append(v.rep.Notes, fmt.Sprintf("seq %d: verifies offline; the bus reported at export: %s (it knew a revocation or binding the bundle does not carry)", r.Seq, mr.Reason))
			}
		case !mr.Verified:
			v.rep.RecordedInvalid++
			v.rep.Notes = append(v.rep.Notes, fmt.Sprintf("seq %d: on record as invalid: %s", r.Seq, r.Reason))
		default:
			v.problem(r.Seq, mr.File, ErrSignature, "%s", strings.TrimPrefix(r.Reason, ErrSignature.Error()+": "))
		}
		if len(r.Certificates) > 0 {
			fp := envelope.Fingerprint(r.Certificates[0])
			if _, ok := agencyCerts[fp]; !ok {
				v.problem(r.Seq, mr.File, ErrCertificate, "signed with certificate %s, which is not among the bundle's certificates", fp)
			}
		}
	}
	return nil
}

// checkCompleteness: every link of the range must have its record, and a
// valid checkpoint must cover the range's last link and, for a range with
// an end, a link stored at or after that end: only such a link proves that
// no record of the range after the bundle's last one was cut with its link.
func (v *bundleVerifier) checkCompleteness() {
	have := map[uint64]bool{}
	for _, mr := range v.m.Records {
		have[mr.Seq] = true
	}
	until := v.m.Query.Until
	var lastInRange, endSeq uint64 // endSeq: the first link stored at or after until
	for _, seq := range v.order {
		l := v.links[seq]
		if !until.IsZero() && endSeq == 0 && !l.Time.Before(until) {
			endSeq = seq
		}
		if !v.inRange(l) {
			continue
		}
		lastInRange = seq
		if !have[seq] {
			v.problem(seq, "", ErrMissingRecord, "the chain links seq %d (%s, stored %s, SHA-256 %s) inside the range, the bundle has no record for it",
				seq, l.Subject, l.Time.UTC().Format(time.RFC3339Nano), l.Digest)
		}
	}
	for _, mr := range v.m.Records {
		lastInRange = max(lastInRange, mr.Seq)
	}
	var msg string
	switch {
	case v.rep.CoveredThrough == 0 || v.rep.CoveredThrough < lastInRange:
		msg = fmt.Sprintf("no valid signed checkpoint covers the range through seq %d (covered through %d): the records after the last checkpoint rest on the bundle alone", lastInRange, v.rep.CoveredThrough)
	case !until.IsZero() && endSeq == 0:
		msg = fmt.Sprintf("the chain in the bundle ends at seq %d, before the range's end %s: records of the range stored after it may have been removed with their links",
			v.rep.LastLink, until.UTC().Format(time.RFC3339Nano))
	case !until.IsZero() && v.rep.CoveredThrough < endSeq:
		msg = fmt.Sprintf("no valid signed checkpoint covers seq %d, the first link at or after the range's end %s (covered through %d): records of the range stored after seq %d may have been removed with their links",
			endSeq, until.UTC().Format(time.RFC3339Nano), v.rep.CoveredThrough, v.rep.CoveredThrough)
	}
	v.rep.Covered = msg == ""
	switch {
	case !v.rep.Covered && v.o.RequireCoverage:
		v.problem(0, "", ErrNotCovered, "%s", msg)
	case !v.rep.Covered:
		v.rep.Notes = append(v.rep.Notes, "NOT COVERED: "+msg)
	case until.IsZero():
		v.rep.Notes = append(v.rep.Notes, fmt.Sprintf("the range has no end: the bundle proves the record through seq %d, the last link a valid checkpoint covers; records stored after it are not proven absent (export with --until and verify with --require-checkpoint to prove a range's end)",
			v.rep.CoveredThrough))
	}
}

func (v *bundleVerifier) checkAttachments() {
	for _, a := range v.m.Attachments {
		if a.File != "attachments/"+a.SHA256 {
			v.problem(0, a.File, ErrBundle, "attachment with SHA-256 %s should be attachments/%s", a.SHA256, a.SHA256)
			continue
		}
		if got, ok := v.sums[a.File]; ok && got != a.SHA256 {
			v.problem(0, a.File, ErrBundle, "content SHA-256 is %s, the signed manifests of the records name %s", got, a.SHA256)
			continue
		}
		for _, seq := range a.Records {
			e := v.envs[seq]
			if e != nil && !slices.ContainsFunc(e.Attachments, func(x envelope.Attachment) bool { return x.SHA256 == a.SHA256 }) {
				v.problem(seq, a.File, ErrBundle, "the envelope of seq %d lists no attachment with SHA-256 %s", seq, a.SHA256)
			}
		}
		v.rep.Attachments++
	}
	if !v.m.Query.Attachments {
		return
	}
	// A bundle exported with attachments holds every attachment its
	// verified envelopes list, unless the bus could not read one: then the
	// manifest's warnings name it, and the missing file is only noted.
	held := map[string]bool{}
	for _, a := range v.m.Attachments {
		held[a.SHA256] = true
	}
	for _, mr := range v.m.Records {
		e := v.envs[mr.Seq]
		if e == nil {
			continue
		}
		for _, a := range e.Attachments {
			switch {
			case held[a.SHA256]:
			case slices.ContainsFunc(v.m.Warnings, func(w string) bool { return strings.Contains(w, a.SHA256) }):
				v.rep.Notes = append(v.rep.Notes, fmt.Sprintf("seq %d: attachment %q (SHA-256 %s) is not in the bundle: the bus could not include it at export", mr.Seq, a.Name, a.SHA256))
			default:
				v.problem(mr.Seq, mr.File, ErrBundle, "the envelope lists attachment %q (SHA-256 %s), which the bundle, exported with attachments, does not hold and the manifest does not say why", a.Name, a.SHA256)
			}
		}
	}
}

func timeOrStored(t time.Time) string {
	if t.IsZero() {
		return "at the stored time"
	}
	return t.Format(time.RFC3339Nano)
}

// readAll is io.ReadAll into b, whose capacity is a first guess.
func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}
