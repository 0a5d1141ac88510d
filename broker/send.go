package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"path/filepath"
	"slices"
	"time"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/docaxis/docaxis/storage"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// File is an attachment to send: its bytes are streamed to the store
// before the envelope is published.
type File struct {
	Name      string
	MediaType string // guessed from the name when empty
	Reader    io.Reader
	Size      int64 // -1 when unknown
	// Progress, if set, is called with the bytes uploaded so far.
	Progress func(done int64)
}

// SendResult tells what Send did.
type SendResult struct {
	ID         string   `json:"id"`
	Digest     string   `json:"digest"` // SHA-256 of the signed bytes
	Recipients []string `json:"recipients"`
	// Signed is the exact signed envelope that was published.
	Signed []byte `json:"-"`
}

// Send uploads files to the attachment store, fills e's manifest, signs e
// with the identity of e.From and stores one copy in each recipient's
// mailbox. Attachments go first and the envelope last: if storage fails,
// nothing is published. Sending an envelope id again returns ErrDuplicate
// (with the result) and stores nothing twice. A failed Send leaves e's
// manifest as it found it, so the same e can be sent again.
func (c *Client) Send(ctx context.Context, e *envelope.Envelope, files ...File) (res *SendResult, err error) {
	// A retry after a failure (a timeout during a failover, storage down)
	// must upload and sign the same manifest again, not append to it.
	before := len(e.Attachments)
	defer func() {
		if err != nil && !errors.Is(err, ErrDuplicate) {
			e.Attachments = e.Attachments[:before]
		}
	}()
	id, err := c.Identity(e.From)
	if err != nil {
		return nil, fmt.Errorf("send as %s: %w", e.From, err)
	}
	if at, revoked := c.trust.RevocationOf(id.Certificate()); revoked && !time.Now().Before(at) {
		return nil, fmt.Errorf("send as %s: %w since %s: the agency needs a new certificate", e.From, signing.ErrRevoked, at.UTC().Format(time.RFC3339))
	}
	// Fail before any attachment is uploaded.
	if err := e.Validate(envelope.AllowCodes(c.dir.known)); err != nil {
		return nil, err
	}
	if err := retryDo(ctx, c, func(ctx context.Context) error { return c.checkRecipients(ctx, e) }); err != nil {
		return nil, err
	}
	if e.Kind != envelope.KindStatus {
		if err := c.checkTimestamping(ctx); err != nil {
			return nil, fmt.Errorf("send %s: %w", e.ID, err)
		}
	}
	if err := retryDo(ctx, c, func(ctx context.Context) error { return c.checkIDFree(ctx, e.ID, e.From) }); err != nil {
		return nil, err
	}
	l := c.Limits()
	if l.MaxAttachments > 0 && len(e.Attachments)+len(files) > l.MaxAttachments {
		return nil, fmt.Errorf("send %s: %w: %d attachments, at most %d", e.ID, ErrLimit, len(e.Attachments)+len(files), l.MaxAttachments)
	}
	for _, f := range files {
		if l.MaxAttachmentSize > 0 && f.Size > l.MaxAttachmentSize {
			return nil, fmt.Errorf("send %s: %w: attachment %s is %d bytes, at most %d", e.ID, ErrLimit, f.Name, f.Size, l.MaxAttachmentSize)
		}
	}
	for _, f := range files {
		a, err := c.PutAttachment(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("send %s: %w", e.ID, err)
		}
		e.Attachments = append(e.Attachments, a)
	}
	if err := retryDo(ctx, c, func(ctx context.Context) error { return c.recordUploads(ctx, e.From, e.Attachments[before:]) }); err != nil {
		return nil, fmt.Errorf("send %s: %w", e.ID, err)
	}
	raw, err := id.Seal(e, envelope.AllowCodes(c.dir.known))
	if err != nil {
		return nil, fmt.Errorf("send %s: %w", e.ID, err)
	}
	if err := c.Limits().check(e, len(raw)); err != nil {
		return nil, fmt.Errorf("send %s: %w", e.ID, err)
	}
	if rate := c.Limits().PublishRate; !c.rate.allow(e.From, rate) {
		return nil, fmt.Errorf("send %s as %s: %w: more than %.0f envelopes per second", e.ID, e.From, ErrRateLimited, rate)
	}
	return c.publishEnvelopeRetry(ctx, e, raw)
}

// SendSigned publishes an envelope a DMS signed itself, unchanged, after
// verifying it as a recipient would.
func (c *Client) SendSigned(ctx context.Context, raw []byte) (*SendResult, error) {
	s, err := c.verifier.Verify(raw)
	if err != nil {
		return nil, fmt.Errorf("send signed envelope: %w", err)
	}
	if err := c.checkRecipients(ctx, s.Envelope); err != nil {
		return nil, err
	}
	if s.Envelope.Kind != envelope.KindStatus {
		if err := c.checkTimestamping(ctx); err != nil {
			return nil, fmt.Errorf("send signed envelope %s: %w", s.Envelope.ID, err)
		}
	}
	if err := c.checkIDFree(ctx, s.Envelope.ID, s.Envelope.From); err != nil {
		return nil, err
	}
	if err := c.Limits().check(s.Envelope, len(raw)); err != nil {
		return nil, fmt.Errorf("send signed envelope %s: %w", s.Envelope.ID, err)
	}
	if !c.rate.allow(s.Envelope.From, c.Limits().PublishRate) {
		return nil, fmt.Errorf("send %s as %s: %w", s.Envelope.ID, s.Envelope.From, ErrRateLimited)
	}
	for _, a := range s.Envelope.Attachments {
		obj, err := c.store.Stat(ctx, a.Key)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrAttachment, a.Name, err)
		}
		if obj.SHA256 != a.SHA256 || obj.Size != a.Size {
			return nil, fmt.Errorf("%w: %s: stored object is %d bytes with SHA-256 %s, manifest says %d bytes %s",
				ErrAttachment, a.Name, obj.Size, obj.SHA256, a.Size, a.SHA256)
		}
		// Knowing a hash is not holding the bytes. An agency's own client
		// cannot read the access records; its attachment service and the
		// tracker judge it instead.
		if c.opts.agency != "" {
			continue
		}
		if ok, err := c.Holds(ctx, a.SHA256, s.Envelope.From); err != nil {
			return nil, fmt.Errorf("send signed envelope %s: %w", s.Envelope.ID, err)
		} else if !ok {
			return nil, fmt.Errorf("%w: %s: %s never uploaded, sent or received those bytes (SHA-256 %s)", ErrAttachment, a.Name, s.Envelope.From, a.SHA256)
		}
	}
	return c.publishEnvelopeRetry(ctx, s.Envelope, raw)
}

// PutAttachment streams one file into the store and returns its manifest
// entry.
func (c *Client) PutAttachment(ctx context.Context, f File) (envelope.Attachment, error) {
	if err := envelope.CheckAttachmentName(f.Name); err != nil {
		return envelope.Attachment{}, fmt.Errorf("%w: %v", ErrAttachment, err)
	}
	mt := f.MediaType
	if mt == "" {
		mt = mime.TypeByExtension(filepath.Ext(f.Name))
		if mt == "" {
			mt = "application/octet-stream"
		}
	}
	obj, err := c.store.Put(ctx, f.Reader, storage.PutOptions{Size: f.Size, MediaType: mt, Progress: f.Progress})
	if err != nil {
		return envelope.Attachment{}, fmt.Errorf("%w: store %s: %w", ErrAttachment, f.Name, err)
	}
	return envelope.Attachment{Name: f.Name, MediaType: mt, Size: obj.Size, SHA256: obj.SHA256, Key: obj.Key}, nil
}

// checkRecipients refuses recipients the directory does not know; the
// envelope itself was validated by the caller (Send, before uploading
// anything; SendSigned, as part of verification).
func (c *Client) checkRecipients(ctx context.Context, e *envelope.Envelope) error {
	for _, to := range e.To {
		a, err := c.LookupAgency(ctx, to)
		if err != nil {
			return fmt.Errorf("send %s to %s: %w", e.ID, to, err)
		}
		if err := a.checkRoutable(); err != nil {
			return fmt.Errorf("send %s: %w", e.ID, err)
		}
	}
	return nil
}

// publishEnvelope fans one signed envelope out to its recipients' mailboxes
// with per-recipient dedup ids, publishing asynchronously and waiting for
// every ack. Recipients in stored hold a copy already (storedCopies) and
// get none again.
func (c *Client) publishEnvelope(ctx context.Context, e *envelope.Envelope, raw []byte, stored map[string]bool) (*SendResult, error) {
	res := &SendResult{ID: e.ID, Digest: envelope.Digest(raw), Recipients: e.To, Signed: raw}
	var to []string
	for _, r := range e.To {
		if !stored[r] {
			to = append(to, r)
		}
	}
	if len(to) == 0 {
		return res, fmt.Errorf("%w: %s", ErrDuplicate, e.ID)
	}
	subjectFor := func(to string) string {
		if e.Kind == envelope.KindStatus {
			return record.StatusSubject(to, e.From)
		}
		return record.DocSubject(to, e.From)
	}
	if SystemOfActor(c.opts.agency) != "" {
		// A system's copies go through the bus, which checks that the
		// system serves e.From.
		dups := 0
		for _, to := range to {
			msg := &nats.Msg{Subject: subjectFor(to), Data: raw, Header: nats.Header{}}
			msg.Header.Set(jetstream.MsgIDHeader, record.DocMsgID(e.ID, to))
			ack, err := c.publishRecord(ctx, msg)
			if err != nil {
				return nil, fmt.Errorf("send %s to %s: %w", e.ID, to, err)
			}
			if ack.Duplicate {
				dups++
			}
		}
		if dups == len(to) {
			return res, fmt.Errorf("%w: %s", ErrDuplicate, e.ID)
		}
		return res, nil
	}
	futures := make([]jetstream.PubAckFuture, 0, len(to))
	for _, to := range to {
		msg := &nats.Msg{Subject: subjectFor(to), Data: raw, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, record.DocMsgID(e.ID, to))
		msg.Header.Set(record.HeaderEnvelope, e.ID)
		f, err := c.js.PublishMsgAsync(msg, jetstream.WithExpectStream(record.Stream))
		if err != nil {
			return nil, fmt.Errorf("send %s to %s: %w", e.ID, to, err)
		}
		futures = append(futures, f)
	}
	var errs []error
	dupAt := map[string]uint64{} // recipient: the record message its copy duplicated
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				dupAt[to[i]] = ack.Sequence
			}
		case err := <-f.Err():
			errs = append(errs, fmt.Errorf("send %s to %s: %w", e.ID, to[i], err))
		case <-ctx.Done():
			return nil, fmt.Errorf("send %s: %w (some copies may be stored; sending again is safe)", e.ID, ctx.Err())
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w (sending again with the same id is safe)", errors.Join(errs...))
	}
	if e.Kind != envelope.KindStatus {
		for _, r := range to {
			if seq, ok := dupAt[r]; ok {
				if err := c.duplicateCopy(ctx, e, r, subjectFor(r), seq); err != nil {
					return nil, err
				}
			}
		}
	}
	if len(dupAt) == len(to) {
		return res, fmt.Errorf("%w: %s", ErrDuplicate, e.ID)
	}
	return res, nil
}

// storedCopies lists the recipients of e that hold a copy of it already: a
// pair the bus tracks for e's id and sender. The record's dedup ids stop a
// resent copy only within its duplicate window (two hours by default); an
// application sending the same envelope again later, believing the first
// send failed, would put a second copy with that id in each mailbox, which
// the recipient then refuses (another envelope with a handed-over id) and
// its sender hears "invalid" of a document that was delivered.
func (c *Client) storedCopies(ctx context.Context, e *envelope.Envelope) (map[string]bool, error) {
	if !envelope.IsID(e.ID) || SystemOfActor(c.opts.agency) != "" || !record.MayOutliveDedup(e.Created, time.Now()) {
		// A system's copies go through the bus, which checks there; an
		// envelope created within the window is stopped by the dedup ids.
		return nil, nil
	}
	ds, err := retry(ctx, c, func(ctx context.Context) (*DocumentStatus, error) { return c.Status(ctx, e.ID) })
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if errors.Is(err, ErrTrackingUnavailable) {
		// No tracking service to ask (the bus's service restarting): the
		// dedup ids still stop a copy resent within their window.
		c.opts.logger.Warn("send: copies stored before not checked", "envelope", e.ID, "err", err)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("send %s: check the copies stored before: %w", e.ID, err)
	}
	if ds.Sender != e.From {
		return nil, nil // another sender's id: refused elsewhere (checkIDFree, the tracker)
	}
	stored := map[string]bool{}
	for _, t := range ds.Recipients {
		if t.Seq > 0 && slices.Contains(e.To, t.Recipient) {
			stored[t.Recipient] = true
		}
	}
	return stored, nil
}

// duplicateCopy judges the copy of e for to that the record answered as a
// duplicate of its message seq: the copy an earlier attempt stored, or a
// message of another agency that took the copy's message id first (the
// record deduplicates ids across the whole stream, and NATS permissions
// do not look at headers; a co-recipient learns the envelope id from its
// own copy). Then the copy was not stored, and the sender is told
// (ErrIDTaken) instead of hearing its document went out. An agency's
// client cannot read the record: the bus's tracking service looks.
func (c *Client) duplicateCopy(ctx context.Context, e *envelope.Envelope, to, subject string, seq uint64) error {
	var err error
	if c.opts.agency == "" {
		err = c.checkDuplicate(ctx, subject, seq)
	} else {
		_, err = c.trackCall(ctx, record.TrackOpCopy, TrackRequest{ID: e.ID, Recipient: to, Seq: seq})
		if errors.Is(err, ErrTrackingUnavailable) {
			// No one to ask (a bus of an earlier version): as before.
			c.opts.logger.Warn("send: a copy answered as a duplicate not checked", "envelope", e.ID, "recipient", to, "err", err)
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("send %s to %s: %w", e.ID, to, err)
	}
	return nil
}

// StoreCopy stores msg, an envelope's copy or a status, in the record as
// the bus's own client does for others (the system proxy, the
// federation's ingest), and judges a copy the record answers as a
// duplicate (checkDuplicate): ErrIDTaken when another publisher's message
// holds its id, and so it was not stored.
func (c *Client) StoreCopy(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error) {
	ack, err := c.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(record.Stream))
	if err != nil {
		return nil, fmt.Errorf("store %s in %s: %w", msg.Subject, record.Stream, err)
	}
	if rs, ok := record.ParseSubject(msg.Subject); ack.Duplicate && ok && rs.Kind == record.KindDoc {
		if err := c.checkDuplicate(ctx, msg.Subject, ack.Sequence); err != nil {
			return nil, err
		}
	}
	return ack, nil
}

// checkDuplicate judges a message published on subject that the record
// answered as a duplicate of its message seq: nil when seq is on subject
// (the same publisher's earlier message), ErrIDTaken when another
// publisher's message took the id. Only the bus's own client reads the
// record.
func (c *Client) checkDuplicate(ctx context.Context, subject string, seq uint64) error {
	st, err := c.js.Stream(ctx, record.Stream)
	if err != nil {
		return fmt.Errorf("open stream %s: %w", record.Stream, err)
	}
	m, err := st.GetMsg(ctx, seq)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil // removed since: nothing tells it was another's
	case err != nil:
		return fmt.Errorf("read record message #%d: %w", seq, err)
	case m.Subject != subject:
		// Not named: the other message is not the publisher's to know of.
		return fmt.Errorf("publish on %s: %w: its message id belongs to another message of the record (#%d), so it was not stored; send the document again under a new envelope id", subject, ErrIDTaken, seq)
	}
	return nil
}
