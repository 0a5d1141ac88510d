package audit

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/docaxis/docaxis/storage"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ExportOptions selects what a bundle holds.
type ExportOptions struct {
	Query
	// Attachments adds the attachments of the records' envelopes.
	Attachments bool
	// NoCheckpointRequest skips asking the chainer for a fresh checkpoint
	// first; the range's end may then not be covered yet.
	NoCheckpointRequest bool
}

// RecordFile is the bundle path of the record of seq.
func RecordFile(seq uint64) string { return fmt.Sprintf("records/%020d.jws", seq) }

// bundleWriter writes zip entries and remembers their SHA-256.
type bundleWriter struct {
	zw    *zip.Writer
	files map[string]string
}

func (b *bundleWriter) create(name string) (io.Writer, func(), error) {
	w, err := b.zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: time.Now().UTC()})
	if err != nil {
		return nil, nil, fmt.Errorf("write %s: %w", name, err)
	}
	h := sha256.New()
	return io.MultiWriter(w, h), func() { b.files[name] = hex.EncodeToString(h.Sum(nil)) }, nil
}

func (b *bundleWriter) write(name string, data []byte) error {
	w, done, err := b.create(name)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	done()
	return nil
}

// Export writes an evidence bundle (a zip, see BUNDLE.md) of the records
// of o to w and returns its manifest. Records that fail verification are
// included as they are, with the reason in the manifest.
func (r *Reader) Export(ctx context.Context, o ExportOptions, w io.Writer) (*Manifest, error) {
	m := &Manifest{Format: BundleFormat, Created: time.Now().UTC(), Files: map[string]string{},
		Query: ManifestQuery{Since: o.Since.UTC(), Until: o.Until.UTC(), Agency: o.Agency, Attachments: o.Attachments}}
	if o.Since.IsZero() {
		m.Query.Since = time.Time{}
	}
	if o.Until.IsZero() {
		m.Query.Until = time.Time{}
	}
	if !o.NoCheckpointRequest {
		if err := requestCheckpoint(ctx, r.js.Conn()); err != nil {
			m.Warnings = append(m.Warnings, "no fresh checkpoint: "+err.Error())
		}
	}
	bw := &bundleWriter{zw: zip.NewWriter(w), files: m.Files}

	certs := map[string][]*x509.Certificate{} // leaf fingerprint -> chain
	type att struct {
		a       envelope.Attachment
		records []uint64
	}
	atts := map[string]*att{}
	var attOrder []string
	var lastInRange uint64
	q := o.Query
	_, err := r.Replay(ctx, q, func(rec *Record) error {
		if rec.Chain == ChainMissing {
			m.Warnings = append(m.Warnings, rec.Reason)
			return nil
		}
		lastInRange = max(lastInRange, rec.Seq)
		name := RecordFile(rec.Seq)
		if err := bw.write(name, rec.Raw); err != nil {
			return err
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
		if o.Attachments && rec.Verified && rec.Envelope != nil {
			for _, a := range rec.Envelope.Attachments {
				if atts[a.SHA256] == nil {
					atts[a.SHA256] = &att{a: a}
					attOrder = append(attOrder, a.SHA256)
				}
				if x := atts[a.SHA256]; !slices.Contains(x.records, rec.Seq) {
					x.records = append(x.records, rec.Seq)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := r.exportChain(ctx, bw, m, o.Query, lastInRange); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := r.exportCerts(bw, m, certs); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := r.exportCRLs(ctx, bw, m); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	for _, sum := range attOrder {
		a := atts[sum]
		name := "attachments/" + sum
		if err := r.exportAttachment(ctx, bw, name, a.a); err != nil {
			var fe *fatalAttachmentError
			if errors.As(err, &fe) {
				return nil, fmt.Errorf("export: attachment %s (%s): %w", a.a.Name, sum, fe.err)
			}
			m.Warnings = append(m.Warnings, fmt.Sprintf("attachment %s (%s) not included: %v", a.a.Name, sum, err))
			continue
		}
		m.Attachments = append(m.Attachments, ManifestAttachment{File: name, SHA256: sum, Size: a.a.Size, Name: a.a.Name, Records: a.records})
	}
	// SHA256SUMS lets `sha256sum -c` check every file, the manifest too.
	if err := finishBundle(bw, m); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return m, nil
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// requestCheckpoint asks the chainer to link what is stored and sign.
func requestCheckpoint(ctx context.Context, nc *nats.Conn) error {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := nc.RequestWithContext(rctx, RequestSubject, nil)
	if errors.Is(err, nats.ErrNoResponders) {
		return errors.New("no audit chainer answered (is 'docaxis serve' running?)")
	}
	if err != nil {
		return fmt.Errorf("ask the chainer for a checkpoint: %w", err)
	}
	if len(resp.Data) > 0 && resp.Data[0] == '{' {
		var e struct{ Error string }
		_ = json.Unmarshal(resp.Data, &e)
		return fmt.Errorf("chainer: %s", e.Error)
	}
	return nil
}

// exportChain writes links.jsonl, from the head of the last checkpoint
// before the range through the first checkpoint covering its end, and
// those two checkpoints.
func (r *Reader) exportChain(ctx context.Context, bw *bundleWriter, m *Manifest, q Query, lastInRange uint64) error {
	as, err := auditStream(ctx, r.js)
	if err != nil {
		m.Warnings = append(m.Warnings, err.Error())
		return nil
	}
	info, err := as.Info(ctx)
	if err != nil {
		return fmt.Errorf("read stream %s: %w", StreamName, err)
	}
	lastAudit := info.State.LastSeq
	if lastAudit == 0 {
		m.Warnings = append(m.Warnings, "the audit chain is empty")
		return nil
	}
	startAudit := info.State.FirstSeq
	anchor, err := anchorBefore(ctx, r.js, as, q.Since, lastAudit)
	if err != nil {
		return err
	}
	if anchor != nil {
		startAudit = headerUint(anchor.Header, HeaderHeadSeq)
	}
	src, err := openSeqSource(ctx, r.js, startAudit, lastAudit)
	if err != nil {
		return err
	}
	defer src.stop()

	lw, done, err := bw.create(LinksFile)
	if err != nil {
		return err
	}
	// Read on past the range's end (a link stored at or after Until proves
	// that every link before it is here) to the next checkpoint, which
	// covers all of it. Without Until: to the end, the last checkpoint.
	var closing []byte
	var closingSeq, lastInRangeLink, endSeq uint64 // endSeq: the first link at or after Until
	passedEnd := false
	for {
		msg, err := src.next(ctx)
		if err != nil {
			return err
		}
		if msg == nil {
			break
		}
		if msg.subject == CheckpointSubject {
			cp, err := parseCheckpointPayload(msg.data)
			if err != nil {
				return fmt.Errorf("decode checkpoint at %s seq %d: %w", StreamName, msg.seq, err)
			}
			if m.Links.Count == 0 || cp.Seq != m.Links.Last {
				continue // not about the links read (the anchor itself)
			}
			closing, closingSeq = msg.data, cp.Seq
			if passedEnd {
				break
			}
			continue
		}
		var l Link
		if err := json.Unmarshal(msg.data, &l); err != nil {
			return fmt.Errorf("decode link at %s seq %d: %w", StreamName, msg.seq, err)
		}
		if _, err := lw.Write(append(msg.data, '\n')); err != nil {
			return fmt.Errorf("write %s: %w", LinksFile, err)
		}
		if m.Links.Count == 0 {
			m.Links.First = l.Seq
		}
		m.Links.Count++
		m.Links.Last = l.Seq
		switch {
		case !q.Until.IsZero() && !l.Time.Before(q.Until):
			if !passedEnd {
				endSeq = l.Seq
			}
			passedEnd = true
		case !l.Time.Before(q.Since):
			lastInRangeLink = l.Seq
		}
	}
	done()
	m.Links.File = LinksFile
	for _, c := range []struct {
		role string
		raw  []byte
	}{{"anchor", rawOf(anchor)}, {"closing", closing}} {
		if c.raw == nil || (c.role == "anchor" && bytesEqual(c.raw, closing)) {
			continue
		}
		cp, err := VerifyCheckpoint(c.raw, r.cfg.Verifier.Trust.Roots())
		if err != nil {
			m.Warnings = append(m.Warnings, fmt.Sprintf("%s checkpoint of seq %d: %v", c.role, closingSeq, err))
			cpp, perr := parseCheckpointPayload(c.raw)
			if perr != nil {
				return perr
			}
			cp = &SignedCheckpoint{Checkpoint: *cpp}
		}
		name := fmt.Sprintf("checkpoints/%020d.jws", cp.Seq)
		if err := bw.write(name, c.raw); err != nil {
			return err
		}
		m.Checkpoints = append(m.Checkpoints, ManifestCheckpoint{File: name, Role: c.role, Seq: cp.Seq, Head: cp.Head, Time: cp.Time})
		if _, ok := m.Files[AuditCAFile]; !ok && len(cp.Chain) > 0 {
			if err := bw.write(AuditCAFile, signing.EncodeCerts(cp.Chain...)); err != nil {
				return err
			}
			m.Certificates = append(m.Certificates, ManifestCertificate{File: AuditCAFile, Role: "audit", Fingerprint: envelope.Fingerprint(cp.Chain[0])})
		}
	}
	// A range with an end is covered only once a checkpoint covers a link
	// past it, as audit verify judges it.
	m.Covered = closing != nil && closingSeq >= max(lastInRangeLink, lastInRange) && (q.Until.IsZero() || (passedEnd && closingSeq >= endSeq))
	switch {
	case closing == nil || closingSeq < max(lastInRangeLink, lastInRange):
		m.Warnings = append(m.Warnings, fmt.Sprintf("%v: no signed checkpoint covers the chain through seq %d yet (the bus signs one every interval; export again later)",
			ErrNotCovered, max(lastInRangeLink, lastInRange)))
	case !m.Covered:
		m.Warnings = append(m.Warnings, fmt.Sprintf("%v: the chain does not reach past the end of the range under a signed checkpoint yet: records stored later in the range may follow (export again later)", ErrNotCovered))
	}
	return nil
}

func rawOf(m *jetstream.RawStreamMsg) []byte {
	if m == nil {
		return nil
	}
	return m.Data
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

// anchorBefore returns the checkpoint that anchors the links of records
// stored from since on: the last one written before the first such link
// (the last one of all when there is none), nil when there is none.
func anchorBefore(ctx context.Context, js jetstream.JetStream, as jetstream.Stream, since time.Time, lastAudit uint64) (*jetstream.RawStreamMsg, error) {
	first, err := firstLinkFrom(ctx, js, since, lastAudit)
	if err != nil {
		return nil, err
	}
	var cpSeq uint64
	if first != nil {
		cpSeq = headerUint(first.Header, HeaderLastCheckpoint)
	} else if last, err := lastMsg(ctx, as, CheckpointSubject); err != nil {
		return nil, err
	} else if last != nil {
		cpSeq = last.Sequence
	}
	if cpSeq == 0 {
		return nil, nil
	}
	anchor, err := as.GetMsg(ctx, cpSeq)
	if err != nil {
		return nil, fmt.Errorf("read anchor checkpoint at %s seq %d: %w", StreamName, cpSeq, err)
	}
	return anchor, nil
}

// firstLinkFrom returns the first link of a record stored at or after
// since, nil if there is none.
func firstLinkFrom(ctx context.Context, js jetstream.JetStream, since time.Time, lastAudit uint64) (*jetstream.RawStreamMsg, error) {
	src, err := openSource(ctx, js, StreamName, []string{LinkSubject}, since, time.Time{}, lastAudit)
	if err != nil {
		return nil, err
	}
	defer src.stop()
	for {
		msg, err := src.next(ctx)
		if err != nil || msg == nil {
			return nil, err
		}
		var l Link
		if err := json.Unmarshal(msg.data, &l); err != nil {
			return nil, fmt.Errorf("decode link at %s seq %d: %w", StreamName, msg.seq, err)
		}
		if !l.Time.Before(since) {
			// The consumer does not hand out headers through streamMsg;
			// read the stored message for them.
			as, err := js.Stream(ctx, StreamName)
			if err != nil {
				return nil, err
			}
			return as.GetMsg(ctx, msg.seq)
		}
	}
}

// openSeqSource reads both subjects of the audit stream from seq on.
func openSeqSource(ctx context.Context, js jetstream.JetStream, from, last uint64) (*msgSource, error) {
	if from == 0 {
		from = 1
	}
	cons, err := js.OrderedConsumer(ctx, StreamName, jetstream.OrderedConsumerConfig{
		NamePrefix: consumerPrefix("audit_export"), DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from,
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: create consumer: %w", StreamName, err)
	}
	s := &msgSource{lastSeq: last}
	if info := cons.CachedInfo(); info != nil {
		s.remaining = info.NumPending
	}
	s.total = s.remaining
	if s.remaining == 0 {
		s.done = true
		return s, nil
	}
	if s.it, err = cons.Messages(jetstream.PullMaxMessages(1000)); err != nil {
		return nil, fmt.Errorf("read %s: %w", StreamName, err)
	}
	s.unhook = context.AfterFunc(ctx, s.it.Stop)
	return s, nil
}

func (r *Reader) exportCerts(bw *bundleWriter, m *Manifest, certs map[string][]*x509.Certificate) error {
	roots := r.cfg.Verifier.Trust.Roots()
	if err := bw.write(CAFile, signing.EncodeCerts(roots...)); err != nil {
		return err
	}
	for _, c := range roots {
		m.Certificates = append(m.Certificates, ManifestCertificate{File: CAFile, Role: "ca", Fingerprint: envelope.Fingerprint(c)})
	}
	fps := make([]string, 0, len(certs))
	for fp := range certs {
		fps = append(fps, fp)
	}
	sort.Strings(fps)
	for _, fp := range fps {
		chain := certs[fp]
		agency := r.cfg.Verifier.Trust.AgencyOf(chain[0])
		name := fmt.Sprintf("certs/agency-%s-%s.pem", envelope.Token(agency), fp[:16])
		if agency == "" {
			name = fmt.Sprintf("certs/unbound-%s.pem", fp[:16])
		}
		if err := bw.write(name, signing.EncodeCerts(chain...)); err != nil {
			return err
		}
		m.Certificates = append(m.Certificates, ManifestCertificate{File: name, Role: "agency", Agency: agency, Fingerprint: fp})
	}
	return nil
}

// exportCRLs adds the revocation lists of the bus's directory, so that an
// auditor offline refuses what a revoked certificate signed after its
// revocation, as the bus does.
func (r *Reader) exportCRLs(ctx context.Context, bw *bundleWriter, m *Manifest) error {
	kv, err := r.js.KeyValue(ctx, record.DirectoryBucket)
	if err != nil {
		return fmt.Errorf("read revocations: %w", err)
	}
	// Every CRL, even one updated while the bundle is written (a CRL is
	// never deleted, only replaced by a newer one).
	keys, err := record.BucketKeys(ctx, r.js, record.DirectoryBucket, broker.CRLPrefix+"*")
	if err != nil {
		return fmt.Errorf("read revocations: %w", err)
	}
	sort.Strings(keys)
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if err != nil {
			return fmt.Errorf("read revocation list %s: %w", k, err)
		}
		name := "crl/" + strings.TrimPrefix(k, broker.CRLPrefix) + ".crl"
		if err := bw.write(name, e.Value()); err != nil {
			return err
		}
		sum := sha256.Sum256(e.Value())
		m.Certificates = append(m.Certificates, ManifestCertificate{File: name, Role: "crl", Fingerprint: hex.EncodeToString(sum[:])})
	}
	return nil
}

func (r *Reader) exportAttachment(ctx context.Context, bw *bundleWriter, name string, a envelope.Attachment) error {
	if r.cfg.Store == nil {
		return errors.New("no attachment store configured")
	}
	rc, _, err := r.cfg.Store.Get(ctx, a.Key)
	if err != nil {
		return err
	}
	defer rc.Close()
	w, done, err := bw.create(name)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, storage.NewVerifyingReader(rc, a.Name, a.Size, a.SHA256)); err != nil {
		// Half an entry is in the zip already: the bundle would not be
		// consistent, so the export fails.
		return &fatalAttachmentError{err}
	}
	done()
	return nil
}

type fatalAttachmentError struct{ err error }

func (e *fatalAttachmentError) Error() string { return e.err.Error() }
