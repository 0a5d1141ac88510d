package audit

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/broker/tsa"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// Evidence errors.
var (
	// ErrNoDocument: no record of the bus holds that envelope id.
	ErrNoDocument = errors.New("no such document on record")
	// ErrNotParty: the agency asking is neither the sender nor a
	// recipient of the document.
	ErrNotParty = errors.New("not the sender or a recipient of the document")
	// ErrTimestamp: a time-stamp token of an evidence package is missing,
	// malformed, for other data, from an untrusted TSA, or its time
	// disagrees with what it covers.
	ErrTimestamp = errors.New("bad time-stamp token")
)

// EvidenceOptions selects what Evidence writes.
type EvidenceOptions struct {
	// ID is the document's envelope id.
	ID string
	// Agency, when set, is who asks: the sender gets every record about
	// the document, a recipient its own copy and the statuses it
	// reported; anyone else gets ErrNotParty. Empty: the operator, all.
	Agency string
	// Attachments includes the document's attachments.
	Attachments bool
	// MayRead, when set, says whether the agency asking may read the
	// attachment whose SHA-256 is sum (a listing in a signed envelope is
	// no proof of holding the bytes); one it may not is left out, with a
	// warning in the manifest.
	MayRead func(ctx context.Context, sum string) (bool, error)
	// TSARoots are the roots the bus trusts for time-stamps; written to
	// certs/tsa-ca.pem.
	TSARoots []*x509.Certificate
}

// Files of an evidence package besides the bundle's.
const (
	TSACAFile      = "certs/tsa-ca.pem"
	EvidenceReadme = "README.txt"
)

// EvidenceFile is the name of an evidence package for id.
func EvidenceFile(id string) string { return "evidence-" + id + ".zip" }

// Evidence writes the evidence package of one document (see EVIDENCE.md):
// every record about it (the envelope as it travelled, each receipt and
// status), the certificates and revocation lists, the chain from each
// record to a time-stamped checkpoint, the tokens, a manifest and a README
// with the steps to check it with openssl alone. A record not yet covered
// by a token is written with a warning and verifies as NOT COVERED.
func (r *Reader) Evidence(ctx context.Context, o EvidenceOptions, w io.Writer) (*Manifest, error) {
	u, err := uuid.Parse(o.ID)
	if err != nil || u.String() != strings.ToLower(o.ID) {
		return nil, fmt.Errorf("evidence: %w: %q is not an envelope id (a UUID)", ErrNoDocument, o.ID)
	}
	o.ID = u.String()
	recs, err := r.documentRecords(ctx, o.ID, u)
	if err != nil {
		return nil, fmt.Errorf("evidence %s: %w", o.ID, err)
	}
	recs, err = partyRecords(recs, o.ID, o.Agency)
	if err != nil {
		return nil, fmt.Errorf("evidence %s: %w", o.ID, err)
	}
	m := &Manifest{Format: EvidenceFormat, Created: time.Now().UTC(), Files: map[string]string{}, Document: o.ID,
		Query: ManifestQuery{Agency: o.Agency, Attachments: o.Attachments}}
	bw := &bundleWriter{zw: zip.NewWriter(w), files: m.Files}
	certs := map[string][]*x509.Certificate{}
	atts := map[string]*ManifestAttachment{}
	withheld := map[string]bool{} // attachments the asking agency may not read
	var attOrder []string
	for _, rec := range recs {
		name := RecordFile(rec.Seq)
		if err := bw.write(name, rec.Raw); err != nil {
			return nil, err
		}
		mr := ManifestRecord{Seq: rec.Seq, File: name, Subject: rec.Subject, Stored: rec.Stored, Digest: rec.Digest,
			ID: rec.ID, Type: rec.Type, From: rec.From, To: rec.To, Verified: rec.Verified, Reason: rec.Reason}
		if rec.Recorded.Before(rec.Stored) {
			mr.Recorded = rec.Recorded
		}
		m.Records = append(m.Records, mr)
		if len(rec.Certificates) > 0 {
			certs[envelope.Fingerprint(rec.Certificates[0])] = rec.Certificates
		}
		if o.Attachments && rec.Verified && rec.Envelope != nil && rec.Type == "document" {
			for _, a := range rec.Envelope.Attachments {
				if withheld[a.SHA256] {
					continue
				}
				if atts[a.SHA256] == nil && o.MayRead != nil {
					ok, err := o.MayRead(ctx, a.SHA256)
					if err != nil {
						return nil, fmt.Errorf("evidence: attachment %s: %w", a.Name, err)
					}
					if !ok {
						withheld[a.SHA256] = true
						m.Warnings = append(m.Warnings, fmt.Sprintf("attachment %s (%s) not included: %s may not read it (its sender never held those bytes)", a.Name, a.SHA256, o.Agency))
						continue
					}
				}
				if atts[a.SHA256] == nil {
					atts[a.SHA256] = &ManifestAttachment{File: "attachments/" + a.SHA256, SHA256: a.SHA256, Size: a.Size, Name: a.Name}
					attOrder = append(attOrder, a.SHA256)
					if err := r.exportAttachment(ctx, bw, "attachments/"+a.SHA256, a); err != nil {
						var fe *fatalAttachmentError
						if errors.As(err, &fe) {
							return nil, fmt.Errorf("evidence: attachment %s: %w", a.Name, fe.err)
						}
						m.Warnings = append(m.Warnings, fmt.Sprintf("attachment %s (%s) not included: %v", a.Name, a.SHA256, err))
						delete(atts, a.SHA256)
						attOrder = attOrder[:len(attOrder)-1]
						continue
					}
				}
				if x := atts[a.SHA256]; x != nil && !slices.Contains(x.Records, rec.Seq) {
					x.Records = append(x.Records, rec.Seq)
				}
			}
		}
	}
	for _, sum := range attOrder {
		m.Attachments = append(m.Attachments, *atts[sum])
	}
	if err := r.evidenceChain(ctx, bw, m, recs); err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	if err := r.exportCerts(bw, m, certs); err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	if len(o.TSARoots) > 0 {
		if err := bw.write(TSACAFile, signing.EncodeCerts(o.TSARoots...)); err != nil {
			return nil, err
		}
		for _, c := range o.TSARoots {
			m.Certificates = append(m.Certificates, ManifestCertificate{File: TSACAFile, Role: "tsa-ca", Fingerprint: envelope.Fingerprint(c)})
		}
	}
	if err := r.exportCRLs(ctx, bw, m); err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	if err := bw.write(EvidenceReadme, []byte(evidenceReadme(m))); err != nil {
		return nil, err
	}
	if err := finishBundle(bw, m); err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	return m, nil
}

// documentRecords finds every record about id: the copies of the
// envelope and the statuses whose "of" is id. The id is a UUIDv7 made at
// the envelope's creation, and the mailbox window puts the copies' stored
// time between 10 minutes before and a day after it: a first pass there
// finds the sender and stops at the first copy; the second reads only
// the sender's traffic (its documents' copies and the statuses sent to
// it) from then on, filtered by the server. Without a v7 id, or a copy
// in the window (a copy from another bus held up), it reads everything
// from then on.
func (r *Reader) documentRecords(ctx context.Context, id string, u uuid.UUID) ([]*Record, error) {
	var since, window time.Time
	if u.Version() == 7 {
		sec, nsec := u.Time().UnixTime()
		t := time.Unix(sec, nsec)
		since, window = t.Add(-signing.MaxSkew-time.Minute), t.Add(signing.MaxBackdate+time.Minute)
	}
	var filters []string
	if !since.IsZero() {
		from, err := r.findSender(ctx, id, since, window)
		if err != nil {
			return nil, err
		}
		if from != "" {
			filters = []string{record.SentFilter(from), record.StatusFilter(from)}
		}
	}
	rs, err := r.js.Stream(ctx, RecordStream)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", RecordStream, err)
	}
	info, err := rs.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", RecordStream, err)
	}
	src, err := openSource(ctx, r.js, RecordStream, filters, since, time.Time{}, info.State.LastSeq)
	if err != nil {
		return nil, err
	}
	defer src.stop()
	dir := newBusDirectory(r.js, 0)
	var recs []*Record
	for {
		m, err := src.next(ctx)
		if err != nil {
			return nil, err
		}
		if m == nil {
			break
		}
		e, err := envelope.Peek(m.data)
		if err != nil {
			continue
		}
		if e.ID != id && (e.Status == nil || e.Status.Of != id) {
			continue
		}
		_, from, _ := subjectFields(m.subject)
		recorded, err := dir.recordedAt(ctx, m.recorded, from, m.time)
		if err != nil {
			return nil, err
		}
		rec := newRecord(m.seq, m.time, recorded, m.subject, m.data)
		verifyRecord(r.cfg.Verifier, rec)
		recs = append(recs, rec)
	}
	if !slices.ContainsFunc(recs, func(rec *Record) bool { return rec.ID == id && rec.Type == "document" }) {
		return nil, fmt.Errorf("%w: no document %s", ErrNoDocument, id)
	}
	return recs, nil
}

// findSender returns the sender (by the record's subject) of the first
// verified copy of document id stored in [since, until), "" if none.
func (r *Reader) findSender(ctx context.Context, id string, since, until time.Time) (string, error) {
	src, err := openRecords(ctx, r.js, Query{Since: since, Until: until})
	if err != nil {
		return "", err
	}
	defer src.stop()
	for {
		m, err := src.next(ctx)
		if err != nil || m == nil {
			return "", err
		}
		typ, from, _ := subjectFields(m.subject)
		if typ != "document" {
			continue
		}
		if e, err := envelope.Peek(m.data); err != nil || e.ID != id {
			continue
		}
		// Only a copy whose signature holds says who sent it: a copy
		// someone else stored under that id must not steer the search.
		rec := newRecord(m.seq, m.time, m.time, m.subject, m.data)
		verifyRecord(r.cfg.Verifier, rec)
		if rec.Verified {
			return from, nil
		}
	}
}

// partyRecords keeps what agency may see: the sender (as the verified
// envelope names it) everything, a recipient its own copy and what it
// reported. What is not its own, an agency never learns.
func partyRecords(recs []*Record, id, agency string) ([]*Record, error) {
	if agency == "" {
		return recs, nil
	}
	var sender string
	var to []string
	for _, rec := range recs {
		if rec.Type == "document" && rec.ID == id && rec.Verified && rec.Envelope != nil {
			sender, to = rec.Envelope.From, rec.Envelope.To
			break
		}
	}
	switch {
	case agency == sender:
		return recs, nil
	case !slices.Contains(to, agency):
		// The same answer as for an id that does not exist: an outsider
		// learns nothing about which documents exist.
		return nil, fmt.Errorf("%w: no document %s for %s", ErrNoDocument, id, agency)
	}
	var out []*Record
	for _, rec := range recs {
		if (rec.Type == "document" && rec.To == agency) || (rec.Type == "status" && rec.From == agency) {
			out = append(out, rec)
		}
	}
	return out, nil
}

// tokenIndex finds the time-stamp tokens of the chain by checkpoint seq:
// they are stored in increasing checkpoint order.
type tokenIndex struct {
	s           jetstream.Stream
	first, last uint64
}

func (r *Reader) tokens(ctx context.Context) (*tokenIndex, error) {
	s, err := r.js.Stream(ctx, TimestampStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return &tokenIndex{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", TimestampStream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", TimestampStream, err)
	}
	return &tokenIndex{s: s, first: info.State.FirstSeq, last: info.State.LastSeq}, nil
}

// covering returns the first token whose checkpoint covers chain seq and
// the one before it (the anchor; nil at the chain's start).
func (ti *tokenIndex) covering(ctx context.Context, seq uint64) (closing, anchor *jetstream.RawStreamMsg, err error) {
	if ti.s == nil || ti.last == 0 {
		return nil, nil, nil
	}
	lo, hi := ti.first, ti.last+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		m, err := ti.s.GetMsg(ctx, mid)
		if err != nil {
			return nil, nil, fmt.Errorf("read token at %s seq %d: %w", TimestampStream, mid, err)
		}
		if headerUint(m.Header, HeaderCheckpointSeq) >= seq {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if lo <= ti.last {
		if closing, err = ti.s.GetMsg(ctx, lo); err != nil {
			return nil, nil, err
		}
	}
	if lo > ti.first {
		if anchor, err = ti.s.GetMsg(ctx, lo-1); err != nil {
			return nil, nil, err
		}
	}
	return closing, anchor, nil
}

// evidenceChain writes, for each record, the chain segment from the head
// of the last time-stamped checkpoint before it to the first time-stamped
// checkpoint after it, both checkpoints and the closing one's token.
func (r *Reader) evidenceChain(ctx context.Context, bw *bundleWriter, m *Manifest, recs []*Record) error {
	ti, err := r.tokens(ctx)
	if err != nil {
		return err
	}
	as, err := auditStream(ctx, r.js)
	if err != nil {
		return err
	}
	type segment struct{ closing, anchor *jetstream.RawStreamMsg }
	segs := map[uint64]segment{} // by closing token seq
	var order []uint64
	for _, rec := range recs {
		closing, anchor, err := ti.covering(ctx, rec.Seq)
		if err != nil {
			return err
		}
		if closing == nil {
			m.Warnings = append(m.Warnings, fmt.Sprintf("%v: record seq %d is not covered by a time-stamped checkpoint yet (the bus time-stamps every checkpoint; fetch the evidence again later)", ErrNotCovered, rec.Seq))
			continue
		}
		if _, ok := segs[closing.Sequence]; !ok {
			segs[closing.Sequence] = segment{closing, anchor}
			order = append(order, closing.Sequence)
		}
	}
	sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })
	// Links are written after the checkpoints: a zip takes one entry at
	// a time. A segment is one checkpoint interval of links.
	var lw bytes.Buffer
	written := map[uint64]bool{}
	cps := map[uint64]bool{}
	writeCP := func(auditSeq uint64, role string) (*Checkpoint, error) {
		msg, err := as.GetMsg(ctx, auditSeq)
		if err != nil {
			return nil, fmt.Errorf("read checkpoint at %s seq %d: %w", StreamName, auditSeq, err)
		}
		cp, err := parseCheckpointPayload(msg.Data)
		if err != nil {
			return nil, fmt.Errorf("decode checkpoint at %s seq %d: %w", StreamName, auditSeq, err)
		}
		if !cps[cp.Seq] {
			cps[cp.Seq] = true
			name := fmt.Sprintf("checkpoints/%020d.jws", cp.Seq)
			if err := bw.write(name, msg.Data); err != nil {
				return nil, err
			}
			m.Checkpoints = append(m.Checkpoints, ManifestCheckpoint{File: name, Role: role, Seq: cp.Seq, Head: cp.Head, Time: cp.Time})
			if _, ok := m.Files[AuditCAFile]; !ok {
				if scp, err := VerifyCheckpoint(msg.Data, r.cfg.Verifier.Trust.Roots()); err == nil {
					if err := bw.write(AuditCAFile, signing.EncodeCerts(scp.Chain...)); err != nil {
						return nil, err
					}
					m.Certificates = append(m.Certificates, ManifestCertificate{File: AuditCAFile, Role: "audit", Fingerprint: envelope.Fingerprint(scp.Chain[0])})
				}
			}
		}
		return cp, nil
	}
	for _, k := range order {
		sg := segs[k]
		closingCP, err := writeCP(headerUint(sg.closing.Header, HeaderCheckpointAuditSeq), "closing")
		if err != nil {
			return err
		}
		from := uint64(1)
		if sg.anchor != nil {
			acp := headerUint(sg.anchor.Header, HeaderCheckpointAuditSeq)
			amsg, err := as.GetMsg(ctx, acp)
			if err != nil {
				return fmt.Errorf("read checkpoint at %s seq %d: %w", StreamName, acp, err)
			}
			from = headerUint(amsg.Header, HeaderHeadSeq)
			if _, err := writeCP(acp, "anchor"); err != nil {
				return err
			}
		}
		to := headerUint(sg.closing.Header, HeaderCheckpointAuditSeq)
		src, err := openSeqSource(ctx, r.js, from, to)
		if err != nil {
			return err
		}
		for {
			msg, err := src.next(ctx)
			if err != nil {
				src.stop()
				return err
			}
			if msg == nil {
				break
			}
			if msg.subject != LinkSubject {
				continue
			}
			var l Link
			if err := json.Unmarshal(msg.data, &l); err != nil {
				src.stop()
				return fmt.Errorf("decode link at %s seq %d: %w", StreamName, msg.seq, err)
			}
			if l.Seq > closingCP.Seq {
				break
			}
			if !written[l.Seq] {
				written[l.Seq] = true
				if _, err := lw.Write(append(msg.data, '\n')); err != nil {
					src.stop()
					return fmt.Errorf("write %s: %w", LinksFile, err)
				}
				if m.Links.Count == 0 {
					m.Links.First = l.Seq
				}
				m.Links.Count++
				m.Links.Last = l.Seq
			}
			if l.Seq == closingCP.Seq {
				break
			}
		}
		src.stop()
		tok, err := tsa.ParseResponse(sg.closing.Data)
		if err != nil {
			return fmt.Errorf("token of checkpoint %d: %w", closingCP.Seq, err)
		}
		name := fmt.Sprintf("timestamps/%020d.tsr", closingCP.Seq)
		if err := bw.write(name, sg.closing.Data); err != nil {
			return err
		}
		m.Timestamps = append(m.Timestamps, ManifestTimestamp{File: name, Checkpoint: fmt.Sprintf("checkpoints/%020d.jws", closingCP.Seq),
			Seq: closingCP.Seq, Time: tok.Time, TSA: tok.TSAName()})
		if _, ok := m.Files["certs/tsa.pem"]; !ok {
			if err := bw.write("certs/tsa.pem", signing.EncodeCerts(tok.Signer)); err != nil {
				return err
			}
			m.Certificates = append(m.Certificates, ManifestCertificate{File: "certs/tsa.pem", Role: "tsa", Fingerprint: envelope.Fingerprint(tok.Signer)})
		}
	}
	if err := bw.write(LinksFile, lw.Bytes()); err != nil {
		return err
	}
	m.Links.File = LinksFile
	m.Covered = len(m.Warnings) == 0
	return nil
}

// finishBundle writes manifest.json and SHA256SUMS and closes the zip.
func finishBundle(bw *bundleWriter, m *Manifest) error {
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	sums := map[string]string{ManifestFile: sha256hex(mj)}
	for k, v := range m.Files {
		sums[k] = v
	}
	names := make([]string, 0, len(sums))
	for k := range sums {
		names = append(names, k)
	}
	sort.Strings(names)
	var sb strings.Builder
	for _, n := range names {
		fmt.Fprintf(&sb, "%s  %s\n", sums[n], n)
	}
	if err := bw.write(ManifestFile, mj); err != nil {
		return err
	}
	if err := bw.write(SumsFile, []byte(sb.String())); err != nil {
		return err
	}
	delete(m.Files, ManifestFile)
	delete(m.Files, SumsFile)
	if err := bw.zw.Close(); err != nil {
		return fmt.Errorf("finish zip: %w", err)
	}
	return nil
}

func evidenceReadme(m *Manifest) string {
	var b strings.Builder
	fmt.Fprintf(&b, `docaxis evidence package (%s) for document %s

What it holds
  records/<seq>.jws        the envelope as it travelled and every receipt and
                           status about it: JWS compact, signed by the agency
                           (certificate chain in the JWS x5c header)
  links.jsonl              the bus's hash chain from each record to a
                           time-stamped checkpoint
  checkpoints/<seq>.jws    checkpoints of the chain head, signed by the bus
  timestamps/<seq>.tsr     RFC 3161 time-stamp responses (DER TimeStampResp)
                           over the exact bytes of checkpoints/<seq>.jws
  certs/ca.pem             the bus CA (agencies' and the audit key's root)
  certs/tsa-ca.pem         the root(s) trusted for time-stamps
  certs/tsa.pem            the time-stamping authority's certificate
  certs/audit.pem          the bus's audit certificate chain
  crl/*.crl                revocation lists (DER) of the CA
  manifest.json, SHA256SUMS

Checking it without docaxis (openssl, sha256sum, jq):

  1. Files
       sha256sum -c SHA256SUMS

  2. Time-stamps: each token covers its checkpoint, from a trusted TSA
`, m.Format, m.Document)
	for _, t := range m.Timestamps {
		fmt.Fprintf(&b, "       openssl ts -verify -in %s -data %s -CAfile %s -untrusted certs/tsa.pem\n", t.File, t.Checkpoint, TSACAFile)
		fmt.Fprintf(&b, "       openssl ts -reply -in %s -text        # genTime: %s\n", t.File, t.Time.Format(time.RFC3339))
	}
	b.WriteString(`
  3. Checkpoints: the payload (second part, base64url) names the chain head
     {"seq":N,"head":"<hash of link N>",...}; the signature is ES256 by the
     certificate in its x5c header (certs/audit.pem), issued by certs/ca.pem:
       cut -d. -f2 checkpoints/<seq>.jws | tr '_-' '/+' | base64 -d 2>/dev/null | jq .
       openssl verify -CAfile certs/ca.pem certs/audit.pem

  4. Chain: each line of links.jsonl hashes, with sha256sum, to its "hash":
       printf 'docaxis-audit-link/1\n%s\n%s\n%s\n%s\n%s\n' SEQ TIME SUBJECT DIGEST PREV | sha256sum
     each "prev" is the "hash" of the line before (a new segment starts at the
     head of an anchor checkpoint), and the last link of each segment is the
     "head" of the time-stamped checkpoint that closes it.

  5. Records: sha256sum records/<seq>.jws equals the "digest" of link <seq>;
     each record is a JWS any JOSE library verifies with the x5c leaf; the
     leaf chains to certs/ca.pem:
       openssl verify -CAfile certs/ca.pem -untrusted certs/agency-....pem certs/agency-....pem
     and names the agency in its SAN URI urn:docaxis:agency:<code>.

  So the record existed, unchanged, no later than the genTime of the token
  that closes its segment: the time rests on the TSA, not on the bus.
`)
	return b.String()
}

// evidenceTokenSkew is how far a token's time may lie before the
// checkpoint it covers (the TSA's and the bus's clocks differ a little).
const evidenceTokenSkew = signing.MaxSkew

func checkpointSeqOf(name string) uint64 {
	n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, "checkpoints/"), ".jws"), 10, 64)
	return n
}

// checkTimestamps verifies an evidence package's tokens and that each
// segment of its chain starts at an anchor (a signed checkpoint's head or
// the chain's start) and ends at a checkpoint a valid token covers, and
// that every record lies in such a segment.
func (v *bundleVerifier) checkTimestamps() {
	roots := v.o.TSARoots
	if len(roots) == 0 {
		if b, err := v.read(TSACAFile); err == nil {
			if roots, err = signing.ParseCerts(b); err != nil {
				v.problem(0, TSACAFile, ErrTimestamp, "%v", err)
			}
		}
	} else if b, err := v.read(TSACAFile); err == nil {
		bundled, _ := signing.ParseCerts(b)
		for _, c := range bundled {
			if !slices.ContainsFunc(roots, c.Equal) {
				v.problem(0, TSACAFile, ErrTimestamp, "TSA root %q (SHA-256 %s) is not the pinned TSA root", c.Subject.CommonName, envelope.Fingerprint(c))
			}
		}
	}
	for _, c := range roots {
		v.rep.TSAFingerprints = append(v.rep.TSAFingerprints, envelope.Fingerprint(c))
	}
	skew := v.o.TokenSkew
	if skew <= 0 {
		skew = evidenceTokenSkew
	}
	stamped := map[uint64]bool{}
	seen := map[string]bool{}
	for _, mt := range v.m.Timestamps {
		if seen[mt.File] {
			v.problem(0, mt.File, ErrBundle, "the manifest lists %s twice", mt.File)
			continue
		}
		seen[mt.File] = true
		der, err := v.read(mt.File)
		if err != nil {
			v.problem(0, mt.File, ErrTimestamp, "%v", err)
			continue
		}
		tok, err := tsa.ParseResponse(der)
		if err != nil {
			v.rep.Problems = append(v.rep.Problems, problemFrom(0, mt.File, ErrTimestamp, err))
			continue
		}
		seq := checkpointSeqOf(mt.Checkpoint)
		raw, ok := v.cpRaw[seq]
		if !ok || mt.Checkpoint != fmt.Sprintf("checkpoints/%020d.jws", seq) || seq != mt.Seq {
			v.problem(0, mt.File, ErrTimestamp, "covers checkpoint %s (seq %d), which is not a valid checkpoint of the package", mt.Checkpoint, mt.Seq)
			continue
		}
		if err := tok.Covers(raw); err != nil {
			v.rep.Problems = append(v.rep.Problems, problemFrom(0, mt.File, ErrTimestamp, fmt.Errorf("%w (checkpoint %s): a token swapped or for other data", err, mt.Checkpoint)))
			continue
		}
		if len(roots) == 0 {
			v.problem(0, mt.File, ErrTimestamp, "no TSA root to verify against (no %s, no pinned root)", TSACAFile)
			continue
		}
		if err := tok.VerifySigner(roots); err != nil {
			v.rep.Problems = append(v.rep.Problems, problemFrom(0, mt.File, ErrTimestamp, err))
			continue
		}
		if cpt := v.cpTime[seq]; tok.Time.Add(tok.Accuracy + skew).Before(cpt) {
			v.problem(0, mt.File, ErrTimestamp, "token time %s is before the checkpoint it covers was signed (%s) by more than the allowed skew of %s",
				tok.Time.Format(time.RFC3339), cpt.Format(time.RFC3339), skew)
			continue
		}
		if !tok.Time.Equal(mt.Time) {
			v.problem(0, mt.File, ErrTimestamp, "token time is %s, the manifest says %s", tok.Time.Format(time.RFC3339), mt.Time.Format(time.RFC3339))
		}
		// Every link the checkpoint fixes was stored before the token.
		for _, ls := range v.order {
			l := v.links[ls]
			if ls <= seq && l.Time.After(tok.Time.Add(tok.Accuracy+skew)) && v.segmentOf(ls) == v.segmentOf(seq) {
				v.problem(ls, mt.File, ErrTimestamp, "record seq %d was stored at %s, after the token's time %s (more than the allowed skew of %s)",
					ls, l.Time.Format(time.RFC3339Nano), tok.Time.Format(time.RFC3339), skew)
			}
		}
		stamped[seq] = true
		v.rep.Timestamps = append(v.rep.Timestamps, ManifestTimestamp{File: mt.File, Checkpoint: mt.Checkpoint, Seq: seq, Time: tok.Time, TSA: tok.TSAName()})
		v.rep.CoveredThrough = max(v.rep.CoveredThrough, seq)
	}
	// Segments: anchored at the start, closed by a time-stamped checkpoint.
	for i, start := range v.segStarts {
		end := v.rep.LastLink
		if i+1 < len(v.segStarts) {
			end = v.prevLink(v.segStarts[i+1])
		}
		first := v.links[start]
		if _, anchored := v.cpRaw[start]; !anchored && first.Prev != GenesisHash {
			v.problem(start, LinksFile, ErrChainBroken, "a chain segment starts at seq %d, which is neither the head of a signed checkpoint of the package nor the chain's start: links before it may have been removed", start)
		}
		if !stamped[end] {
			v.problem(end, LinksFile, ErrNotCovered, "the chain segment %d to %d does not end at a time-stamped checkpoint", start, end)
		}
	}
	v.rep.Covered = true
	for _, mr := range v.m.Records {
		seg := v.segmentOf(mr.Seq)
		if seg < 0 {
			v.rep.Covered = false
			continue // unlinked: named by checkRecords
		}
		end := v.rep.LastLink
		if seg+1 < len(v.segStarts) {
			end = v.prevLink(v.segStarts[seg+1])
		}
		if !stamped[end] {
			v.rep.Covered = false
			msg := fmt.Sprintf("record seq %d is not covered by a valid time-stamp", mr.Seq)
			if v.o.RequireCoverage {
				v.problem(mr.Seq, mr.File, ErrNotCovered, "%s", msg)
			} else {
				v.rep.Notes = append(v.rep.Notes, "NOT COVERED: "+msg)
			}
		}
	}
	if len(v.m.Timestamps) == 0 {
		v.rep.Covered = false
		v.rep.Notes = append(v.rep.Notes, "NOT COVERED: the package holds no time-stamp token")
	}
}

// segmentOf is the index of the segment holding link seq, -1 if none.
func (v *bundleVerifier) segmentOf(seq uint64) int {
	if v.links[seq] == nil {
		return -1
	}
	i := sort.Search(len(v.segStarts), func(i int) bool { return v.segStarts[i] > seq }) - 1
	return i
}

// prevLink is the seq of the link before seq in file order.
func (v *bundleVerifier) prevLink(seq uint64) uint64 {
	i := slices.Index(v.order, seq)
	if i <= 0 {
		return 0
	}
	return v.order[i-1]
}
