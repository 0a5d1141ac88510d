package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/docaxis/docaxis/broker/failover"
	"github.com/docaxis/docaxis/broker/filesvc"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/docaxis/docaxis/storage"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Handler is the application's part of receiving: it is called once per
// verified envelope. Returning nil acknowledges the envelope and sends the
// signed delivered receipt; an error wrapping ErrReject refuses it for good
// (invalid receipt, quarantine); any other error redelivers it later with
// back-off, up to MaxDeliver times, then quarantines it; so is a panic in
// it (ErrHandlerPanic). A copy delivered MaxDeliver times without an
// answer (a recipient that died with it each time) is quarantined too.
type Handler func(ctx context.Context, d *Delivery) error

// Delivery is one verified envelope handed to the application.
type Delivery struct {
	Envelope *envelope.Envelope
	Signed   *envelope.Signed
	// Digest is the SHA-256 of the exact signed bytes, as the receipt says.
	Digest string
	// Seq is the envelope's sequence in the record; NumDelivered counts
	// deliveries of this copy (more than 1 after a redelivery).
	Seq          uint64
	NumDelivered uint64
	// Saved lists the attachments written with SaveAttachments.
	Saved []SavedAttachment
	// Details, set by attachment checks or the handler, travel in the
	// delivered receipt (per attachment name).
	Details map[string]any
	// Recipient is the agency this copy is for: the mailbox's own, or,
	// in a system's mailbox, whichever of its agencies it is addressed to.
	Recipient string

	mb *Mailbox
}

// SavedAttachment is an attachment written to disk and verified.
type SavedAttachment struct {
	envelope.Attachment
	Path string `json:"path"`
}

// Open streams attachment name from the store; the reader fails at the end
// if the size or SHA-256 differs from the manifest.
func (d *Delivery) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	for _, a := range d.Envelope.Attachments {
		if a.Name == name {
			return d.mb.c.OpenAttachment(ctx, a)
		}
	}
	return nil, fmt.Errorf("%w: envelope %s has no attachment %q", ErrAttachment, d.Envelope.ID, name)
}

// OpenAttachment streams a manifest entry from the store, verifying size
// and SHA-256 as it goes.
func (c *Client) OpenAttachment(ctx context.Context, a envelope.Attachment) (io.ReadCloser, error) {
	rc, _, err := c.store.Get(ctx, a.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrAttachment, a.Name, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{storage.NewVerifyingReader(rc, a.Name, a.Size, a.SHA256), rc}, nil
}

// Outcome reports what happened to one message of a mailbox.
type Outcome struct {
	ID      string `json:"id"`
	From    string `json:"from"`
	Subject string `json:"subject"`
	// Verified is true for an envelope that passed every check and was
	// handed to the application.
	Verified bool `json:"verified"`
	// Duplicate is true for a redelivered envelope the application had
	// already handled: acknowledged without calling the handler again.
	Duplicate   bool   `json:"duplicate,omitempty"`
	Quarantined bool   `json:"quarantined,omitempty"`
	Retry       bool   `json:"retry,omitempty"`
	Error       string `json:"error,omitempty"`
	Delivery    *Delivery
}

// MailboxOption configures a Mailbox.
type MailboxOption func(*mailboxOptions)

type mailboxOptions struct {
	saveDir   string
	verifyAtt bool
	checks    []AttachmentCheck
	onOutcome func(Outcome)
	batch     int
	workers   int
	progress  func(a envelope.Attachment) func(done int64)
	// PDF signatures are verified on receipt unless noPDFCheck; with
	// requirePDF an unsigned or broken PDF makes the envelope invalid.
	noPDFCheck bool
	requirePDF bool
	// ackWait bounds Acknowledge's wait for its receipt to be tracked.
	ackWait time.Duration
}

// AttachmentCheck inspects a saved attachment (e.g. a PDF's signatures).
// It returns details for the delivered receipt; an error wrapping
// ErrReject makes the envelope invalid.
type AttachmentCheck func(ctx context.Context, a envelope.Attachment, path string) (details any, err error)

// WaitDelivered makes Acknowledge return once the bus has tracked the
// envelope as delivered to the agency, for d at most (the receipt is sent
// either way, and a wait that runs out is no error), so that a business
// status marked right after is judged from delivered. A Mailbox ignores
// it.
func WaitDelivered(d time.Duration) MailboxOption {
	return func(o *mailboxOptions) { o.ackWait = d }
}

// SaveAttachments writes each attachment to DIR/<envelope id>/<name>,
// verified, before the handler runs.
func SaveAttachments(dir string) MailboxOption {
	return func(o *mailboxOptions) { o.saveDir = dir }
}

// SkipAttachmentVerification hands envelopes over without streaming their
// attachments first (the application reads them with Delivery.Open, which
// still verifies).
func SkipAttachmentVerification() MailboxOption {
	return func(o *mailboxOptions) { o.verifyAtt = false }
}

// WithAttachmentCheck adds a check run on every saved attachment.
func WithAttachmentCheck(check AttachmentCheck) MailboxOption {
	return func(o *mailboxOptions) { o.checks = append(o.checks, check) }
}

// RequireSignedPDF refuses (invalid receipt, quarantine) an envelope whose
// PDF attachments are not all signed, intact, trusted and unmodified after
// the last signature.
func RequireSignedPDF() MailboxOption {
	return func(o *mailboxOptions) { o.requirePDF = true }
}

// SkipPDFCheck hands PDFs over without verifying their signatures.
func SkipPDFCheck() MailboxOption {
	return func(o *mailboxOptions) { o.noPDFCheck = true }
}

// SaveProgress reports the progress of each attachment being saved: fn
// returns a callback (or nil) for an attachment.
func SaveProgress(fn func(a envelope.Attachment) func(done int64)) MailboxOption {
	return func(o *mailboxOptions) { o.progress = fn }
}

// OnOutcome is called for every message processed, verified or not.
func OnOutcome(fn func(Outcome)) MailboxOption {
	return func(o *mailboxOptions) { o.onOutcome = fn }
}

// BatchSize sets how many messages one fetch asks for (default 64).
func BatchSize(n int) MailboxOption {
	return func(o *mailboxOptions) { o.batch = n }
}

// Concurrency sets how many envelopes Consume handles at once (default
// 16); 1 hands them over one by one in mailbox order.
func Concurrency(n int) MailboxOption {
	return func(o *mailboxOptions) { o.workers = max(n, 1) }
}

// Mailbox reads an agency's mailbox: verify, hand to the application,
// answer with a signed receipt, acknowledge.
type Mailbox struct {
	c      *Client
	agency string
	id     *signing.Identity
	cons   jetstream.Consumer
	opts   mailboxOptions
	// system is set for a document system's mailbox: one for all the
	// agencies it serves; each copy is handled as its recipient's.
	system string
}

// Mailbox opens the mailbox of agency; the client must hold its identity
// (receipts are signed).
func (c *Client) Mailbox(ctx context.Context, agency string, opts ...MailboxOption) (*Mailbox, error) {
	if sys := SystemOfActor(c.opts.agency); sys != "" && (agency == "" || agency == c.opts.agency) {
		return c.systemMailbox(ctx, sys, opts...)
	}
	id, err := c.Identity(agency)
	if err != nil {
		return nil, fmt.Errorf("open mailbox of %s: %w", agency, err)
	}
	cons, err := retry(ctx, c, func(ctx context.Context) (jetstream.Consumer, error) { return c.mailboxConsumer(ctx, agency) })
	if err != nil {
		return nil, c.explain(err)
	}
	o := mailboxOptions{verifyAtt: true, batch: 64, workers: 16}
	for _, opt := range opts {
		opt(&o)
	}
	return &Mailbox{c: c, agency: agency, id: id, cons: cons, opts: o}, nil
}

// Fetch processes messages until wait passes with none arriving, or max
// messages were processed (max <= 0: no limit), and returns how many
// envelopes were handed to h.
func (m *Mailbox) Fetch(ctx context.Context, max int, wait time.Duration, h Handler) (int, error) {
	handed := 0
	processed := 0
	for max <= 0 || processed < max {
		n := m.opts.batch
		if max > 0 && max-processed < n {
			n = max - processed
		}
		if m.system != "" && processed == 0 {
			// Mail stored for agencies that came to the system lately.
			k, err := m.fetchTransfer(ctx, h)
			handed += k
			if err != nil {
				return handed, err
			}
		}
		batch, err := m.fetch(ctx, n, wait)
		if err != nil {
			return handed, fmt.Errorf("fetch mailbox of %s: %w", m.agency, err)
		}
		got := 0
		for in := range stamped(batch, n) {
			got++
			processed++
			if m.process(ctx, in, h).Verified {
				handed++
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			if m.fetchAgain(ctx, err) {
				continue
			}
			return handed, fmt.Errorf("fetch mailbox of %s: %w", m.agency, err)
		}
		if got == 0 {
			return handed, ctx.Err()
		}
	}
	return handed, nil
}

// Consume processes messages as they arrive until ctx ends. Envelopes are
// handled concurrently (see Concurrency): a mailbox is not ordered, and
// receipts and markers are round trips worth overlapping.
func (m *Mailbox) Consume(ctx context.Context, h Handler) error {
	// A message in hand is finished (receipt, marker, ack) even when ctx
	// ends meanwhile: stopping must not leave work half done.
	pctx := context.WithoutCancel(ctx)
	work := make(chan arrival)
	var wg sync.WaitGroup
	for i := 0; i < m.opts.workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for in := range work {
				m.process(pctx, in, h)
			}
		}()
	}
	cc, err := m.cons.Consume(func(msg jetstream.Msg) { work <- arrival{msg: msg, at: time.Now(), consuming: true} },
		jetstream.PullMaxMessages(m.opts.batch))
	if err != nil {
		close(work)
		wg.Wait()
		return fmt.Errorf("consume mailbox of %s: %w", m.agency, err)
	}
	var xcc jetstream.ConsumeContext
	if m.system != "" {
		// Mail stored for agencies that came to the system lately.
		if xc, err := m.c.js.Consumer(ctx, record.Stream, TransferDurable(m.system)); err == nil {
			xcc, _ = xc.Consume(func(msg jetstream.Msg) { work <- arrival{msg: msg, at: time.Now(), consuming: true} }, jetstream.PullMaxMessages(m.opts.batch))
		}
	}
	<-ctx.Done()
	cc.Drain()
	<-cc.Closed()
	if xcc != nil {
		xcc.Drain()
		<-xcc.Closed()
	}
	close(work)
	wg.Wait()
	return nil
}

// arrival is a message with the time it came in (copyInHand.inHand).
type arrival struct {
	msg jetstream.Msg
	at  time.Time
	// consuming: it came to a mailbox consuming for good (Consume), whose
	// connection stays up to carry a plain ack (see Mailbox.ack).
	consuming bool
}

// stamped hands over a batch's messages with the time each came in, as
// they come: copies that arrived together then share one read of the
// directory's revocations (directory.settle), though they are handled
// one after the other.
func stamped(batch jetstream.MessageBatch, n int) <-chan arrival {
	out := make(chan arrival, max(n, 1))
	go func() {
		defer close(out)
		for msg := range batch.Messages() {
			out <- arrival{msg: msg, at: time.Now()}
		}
	}()
	return out
}

func (m *Mailbox) report(o Outcome) Outcome {
	if m.opts.onOutcome != nil {
		m.opts.onOutcome(o)
	}
	return o
}

// process handles one message from the mailbox. It never drops one: every
// path ends in an ack after the envelope was handled, a term after it was
// quarantined, or a nak for a later retry.
func (m *Mailbox) process(ctx context.Context, in arrival, h Handler) Outcome {
	if m.system != "" {
		return m.processForSystem(ctx, in, h)
	}
	msg := in.msg
	meta, err := msg.Metadata()
	if err != nil {
		_ = msg.Nak()
		return m.report(Outcome{Error: "no JetStream metadata: " + err.Error(), Retry: true})
	}
	s, err := m.verifyCopy(ctx, copyInHand{subject: msg.Subject(), header: msg.Headers(), raw: msg.Data(), seq: meta.Sequence.Stream, recorded: meta.Timestamp, inHand: in.at})
	if err != nil {
		if errors.Is(err, ErrReject) {
			return m.refuse(ctx, msg, meta, s, err)
		}
		out := Outcome{}
		if s != nil {
			out = Outcome{ID: s.Envelope.ID, From: s.Envelope.From, Subject: s.Envelope.Subject}
		}
		return m.retry(ctx, msg, meta, s, out, err)
	}
	e := s.Envelope
	out := Outcome{ID: e.ID, From: e.From, Subject: e.Subject}
	rec, err := m.received(ctx, e.ID)
	if err == nil && rec.Digest != "" && rec.Digest != s.Digest() {
		// Another envelope with this id was handed over: not this copy
		// again, and not to be acknowledged as if it were.
		if out, decided := m.idConflict(ctx, msg, meta, s); decided {
			return out
		}
		err = jetstream.ErrKeyNotFound // the copy the id is bound to: handed over
	}
	if err == nil {
		// Handed to the application before a crash or a failed receipt
		// that came ahead of the ack: finish the receipt, do not hand over
		// again.
		if rec.Digest == "" {
			rec.Digest = s.Digest()
		}
		if err := m.receipt(ctx, e, envelope.StateDelivered, rec.Digest, "", rec.Details); err != nil {
			_ = msg.NakWithDelay(time.Second)
			out.Error, out.Retry = "send receipt: "+err.Error(), true
			return m.report(out)
		}
		if err := m.ack(ctx, in); err != nil {
			out.Error, out.Retry = "ack: "+err.Error(), true
		}
		out.Duplicate = true
		return m.report(out)
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		_ = msg.NakWithDelay(time.Second)
		out.Error, out.Retry = "check received marker: "+err.Error(), true
		return m.report(out)
	}
	if meta.NumDelivered > MaxDeliver {
		// Every delivery before went unanswered: the recipient died with
		// the copy each time, or lost it in a failover. The server hands
		// it over without end (MailboxConsumerConfig); here it stops,
		// where the sender and the operator hear of it.
		return m.refuse(ctx, msg, meta, s, fmt.Errorf("delivered %d times without an answer from the recipient", meta.NumDelivered-1))
	}
	d := &Delivery{Envelope: e, Signed: s, Digest: s.Digest(), Seq: meta.Sequence.Stream, NumDelivered: meta.NumDelivered, Recipient: m.agency, mb: m}
	// A slow application or a large attachment must not look like a dead
	// recipient: keep telling the server the work goes on.
	stop := keepAlive(msg, MailboxAckWait/3)
	defer stop()
	if err := m.attachmentsWhenGranted(ctx, d); err != nil {
		// Not found too: on a cluster, a replica behind after a failover
		// answers a read before it has caught up (retry.go).
		if errors.Is(err, storage.ErrUnavailable) || errors.Is(err, filesvc.ErrForbidden) || errors.Is(err, storage.ErrNotFound) {
			return m.retry(ctx, msg, meta, s, out, err)
		}
		return m.refuse(ctx, msg, meta, s, err)
	}
	if err := m.handle(ctx, h, d); err != nil {
		if errors.Is(err, ErrReject) {
			return m.refuse(ctx, msg, meta, s, err)
		}
		return m.retry(ctx, msg, meta, s, out, err)
	}
	if testHookBeforeMarker != nil && testHookBeforeMarker(e) {
		return m.report(out) // simulated crash: no marker, no ack
	}
	if _, err := m.accept(ctx, d); err != nil {
		// Without the marker a redelivery would hand it over again (the
		// application's idempotency key is the envelope id); without the
		// receipt, the redelivery finishes it from the marker.
		_ = msg.NakWithDelay(time.Second)
		out.Error, out.Retry = err.Error(), true
		out.Delivery = d
		return m.report(out)
	}
	if testHookBeforeAck != nil && testHookBeforeAck(e) {
		return m.report(out) // simulated crash: marker and receipt written, no ack
	}
	if err := m.ack(ctx, in); err != nil {
		out.Error = "ack: " + err.Error()
	}
	out.Verified = true
	out.Delivery = d
	return m.report(out)
}

// ErrHandlerPanic: the application's handler panicked on a delivery.
var ErrHandlerPanic = errors.New("handler panicked")

// handle calls the application's handler. A panic in it is this copy's
// failure, retried with back-off and quarantined after MaxDeliver like
// any other error, not the end of the process: a document that trips a
// bug of the application would otherwise stop its whole mailbox at every
// restart.
// The panic and its stack go to the recipient's log only: the error may
// end up in the invalid receipt its sender reads.
func (m *Mailbox) handle(ctx context.Context, h Handler, d *Delivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			m.c.opts.logger.Error("mailbox: the application's handler panicked", "envelope", d.Envelope.ID, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("%w on envelope %s (the recipient's log has the cause)", ErrHandlerPanic, d.Envelope.ID)
		}
	}()
	return h(ctx, d)
}

// idConflictLooks bounds how often a copy whose id another handed-over
// envelope carries is looked at before the bus has tracked either.
const idConflictLooks = 5

// idConflict judges a copy whose envelope id was handed over before with
// other bytes: one of the two reuses the other's id (an agency may sign
// any id, and publish into a mailbox it writes to). The bus binds an id to
// the sender of its first verified copy and tracks only that sender's
// pairs, so the tracking of this recipient's pair names the rightful
// copy: that one is handed over (decided false), even after the other; any
// other is refused, so that neither is acknowledged unseen. Until the bus
// has tracked the pair, the copy is looked at again later.
func (m *Mailbox) idConflict(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, s *envelope.Signed) (Outcome, bool) {
	e := s.Envelope
	tr, err := m.c.Tracking(ctx, e.ID, m.agency)
	switch {
	case err == nil && tr.Sender == e.From && (tr.Digest == "" || tr.Digest == s.Digest()):
		return Outcome{}, false
	case err == nil:
		return m.refuse(ctx, msg, meta, s, fmt.Errorf("%w: envelope id %s is %s's, and another envelope with it was handed over before", ErrReject, e.ID, tr.Sender)), true
	case errors.Is(err, ErrNotFound) && meta.NumDelivered >= idConflictLooks:
		return m.refuse(ctx, msg, meta, s, fmt.Errorf("%w: envelope id %s was handed over before with other bytes, and the bus tracks no copy of it for %s", ErrReject, e.ID, m.agency)), true
	}
	_ = msg.NakWithDelay(time.Second)
	return m.report(Outcome{ID: e.ID, From: e.From, Subject: e.Subject, Retry: true,
		Error: fmt.Sprintf("envelope id %s handed over before with other bytes; which copy it belongs to is not known yet: %v", e.ID, err)}), true
}

// attachmentsWhenGranted runs attachments, waiting a little for access:
// the bus's tracker grants access to a verified copy's attachments as it
// follows the record, a moment after the copy is stored, so a recipient
// quick to fetch may be refused at first. Past the wait, the message is
// retried later like any other transient failure.
func (m *Mailbox) attachmentsWhenGranted(ctx context.Context, d *Delivery) error {
	err := m.attachments(ctx, d)
	for wait := 25 * time.Millisecond; errors.Is(err, filesvc.ErrForbidden) && wait <= time.Second; wait *= 2 {
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		err = m.attachments(ctx, d)
	}
	return err
}

func (m *Mailbox) checkAddress(subject string, e *envelope.Envelope) error {
	rs, ok := record.ParseSubject(subject)
	kind, to, from := rs.Kind, rs.To, rs.From
	switch {
	case !ok || kind != "doc":
		return fmt.Errorf("%w: unexpected subject %s", ErrReject, subject)
	case e.Kind == envelope.KindStatus:
		return fmt.Errorf("%w: a status envelope on a mailbox subject", ErrReject)
	case to != m.agency || !slices.Contains(e.To, m.agency):
		return fmt.Errorf("%w: misaddressed: envelope is for %v, mailbox of %s", ErrReject, e.To, m.agency)
	case from != e.From:
		return fmt.Errorf("%w: %w: published as %s, envelope says from %s", ErrReject, signing.ErrAgencyMismatch, from, e.From)
	}
	return nil
}

// attachments saves or verifies every attachment before the handler runs,
// so nothing is acknowledged whose content does not match its manifest.
func (m *Mailbox) attachments(ctx context.Context, d *Delivery) error {
	e := d.Envelope
	var temp string // a folder for attachments checked but not kept
	defer func() {
		if temp != "" {
			os.RemoveAll(temp)
		}
	}()
	for _, a := range e.Attachments {
		checks := m.opts.checks
		if !m.opts.noPDFCheck && isPDF(a) {
			checks = append(checks[:len(checks):len(checks)], m.pdfCheck)
		}
		if m.opts.saveDir == "" && len(checks) == 0 {
			if !m.opts.verifyAtt {
				continue
			}
			// Stream through the hash check without keeping anything.
			rc, err := m.c.OpenAttachment(ctx, a)
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
			if err != nil {
				return attachmentReadError(a, err)
			}
			continue
		}
		dir := m.opts.saveDir
		if dir == "" {
			if temp == "" {
				var err error
				if temp, err = os.MkdirTemp("", "docaxis-check-"); err != nil {
					return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
				}
			}
			dir = temp
		}
		var progress func(int64)
		if m.opts.progress != nil {
			progress = m.opts.progress(a)
		}
		path, err := m.c.saveAttachment(ctx, a, filepath.Join(dir, e.ID), progress)
		if err != nil {
			return err
		}
		for _, check := range checks {
			det, err := check(ctx, a, path)
			if det != nil {
				if d.Details == nil {
					d.Details = map[string]any{}
				}
				d.Details[a.Name] = det
			}
			if err != nil {
				if dir != temp {
					os.Remove(path) // nothing refused stays in the save folder
				}
				return err
			}
		}
		if dir != temp {
			d.Saved = append(d.Saved, SavedAttachment{Attachment: a, Path: path})
		}
	}
	return nil
}

// SaveAttachment streams a into folder/<name> through a temporary file,
// checks size and SHA-256, and only then moves it into place.
func (c *Client) SaveAttachment(ctx context.Context, a envelope.Attachment, folder string) (string, error) {
	return c.saveAttachment(ctx, a, folder, nil)
}

func (c *Client) saveAttachment(ctx context.Context, a envelope.Attachment, folder string, progress func(int64)) (string, error) {
	if err := envelope.CheckAttachmentName(a.Name); err != nil {
		return "", fmt.Errorf("%w: %v", ErrAttachment, err)
	}
	if err := os.MkdirAll(folder, 0o755); err != nil {
		return "", fmt.Errorf("save %s: %w", a.Name, err)
	}
	rc, err := c.OpenAttachment(ctx, a)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	// The temporary name does not grow with the attachment's: a name of
	// MaxName bytes plus a suffix would be over the file system's limit.
	tmp, err := os.CreateTemp(folder, ".docaxis-*.part")
	if err != nil {
		return "", fmt.Errorf("save %s: %w", a.Name, err)
	}
	var w io.Writer = tmp
	if progress != nil {
		w = &progressWriter{w: tmp, fn: progress}
	}
	_, err = io.Copy(w, rc)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", attachmentReadError(a, err)
	}
	path := filepath.Join(folder, a.Name)
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("save %s: %w", a.Name, err)
	}
	return path, nil
}

// attachmentReadError classifies an error met while streaming an
// attachment: content that does not match its manifest is final; anything
// else (the store timing out mid-stream during a failover, a full disk)
// is worth a retry, so it wraps storage.ErrUnavailable.
func attachmentReadError(a envelope.Attachment, err error) error {
	if errors.Is(err, storage.ErrDigestMismatch) || errors.Is(err, storage.ErrSizeMismatch) {
		return fmt.Errorf("%w: %w", ErrAttachment, err)
	}
	if !errors.Is(err, storage.ErrUnavailable) {
		err = fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
	return fmt.Errorf("%w: read %s: %w", ErrAttachment, a.Name, err)
}

type progressWriter struct {
	w  io.Writer
	n  int64
	fn func(int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	p.fn(p.n)
	return n, err
}

// retry naks for a later redelivery, or quarantines after the last one.
func (m *Mailbox) retry(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, s *envelope.Signed, out Outcome, cause error) Outcome {
	if meta.NumDelivered >= MaxDeliver {
		return m.refuse(ctx, msg, meta, s, fmt.Errorf("failed %d deliveries, last: %w", meta.NumDelivered, cause))
	}
	// A plain Nak is redelivered at once: the consumer's BackOff spaces
	// only redeliveries after an ack timeout, so the delay is given here.
	_ = msg.NakWithDelay(retryDelay(meta.NumDelivered))
	out.Error, out.Retry = cause.Error(), true
	return m.report(out)
}

// retryDelays space the retries of an envelope the recipient could not
// handle yet (storage down, the application's own error).
var retryDelays = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute}

// retryDelay is the wait before the next delivery of a message delivered
// n times.
func retryDelay(n uint64) time.Duration {
	return retryDelays[min(max(n, 1)-1, uint64(len(retryDelays)-1))]
}

// refuse answers an invalid receipt when the sender can be named, moves the
// message with its reason to the quarantine, and only then terminates it.
func (m *Mailbox) refuse(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, s *envelope.Signed, cause error) Outcome {
	var e *envelope.Envelope
	if s != nil {
		e = s.Envelope
	} else if peeked, err := envelope.Peek(msg.Data()); err == nil {
		e = peeked // unverified: used only to address the invalid receipt
	} else if bare, err := envelope.DecodePayload(msg.Data()); err == nil {
		e = bare // an unsigned envelope: its sender still hears why
	}
	out := Outcome{Error: cause.Error(), Quarantined: true}
	if e != nil {
		out.ID, out.From, out.Subject = e.ID, e.From, e.Subject
		if envelope.IsStandardCode(e.From) && envelope.IsID(e.ID) {
			if err := m.receipt(ctx, e, envelope.StateInvalid, envelope.Digest(msg.Data()), cause.Error(), nil); err != nil {
				m.c.opts.logger.Warn("invalid receipt not sent", "envelope", e.ID, "err", err)
			}
		}
	}
	if err := m.c.Quarantine(ctx, m.agency, msg, meta, cause.Error()); err != nil {
		_ = msg.NakWithDelay(5 * time.Second)
		out.Quarantined, out.Retry = false, true
		out.Error += "; quarantine failed: " + err.Error()
		return m.report(out)
	}
	_ = msg.Term()
	return m.report(out)
}

// markerPatience bounds the retries of a received marker: a bucket that
// lost its leader has another within seconds.
var markerPatience = 2 * time.Minute

// putMarker writes the received marker through a failover, asking again
// whatever the failure for up to markerPatience: the application has the
// envelope, and giving up here would hand it over again on redelivery. The
// message is kept meanwhile by keepAlive. Each attempt has its own
// deadline: a write sent to a leader as it dies is never answered, and
// waiting on it with the caller's deadline held the whole mailbox (issue
// 19).
func (m *Mailbox) putMarker(ctx context.Context, key string, value []byte) error {
	ctx, cancel := context.WithTimeout(ctx, markerPatience)
	defer cancel()
	_, err := failover.Do(ctx, failover.Policy{
		Attempt:   max(m.c.opts.timeout, failover.DefaultAttempt),
		Transient: func(error) bool { return true },
		OnRetry: func(_ int, err error) {
			m.c.opts.logger.Warn("received marker not written yet, retrying", "key", key, "err", err)
		},
	}, func(ctx context.Context) (uint64, error) { return m.c.received.Put(ctx, key, value) })
	return err
}

// keepAlive sends "in progress" for msg every interval until stopped.
func keepAlive(msg jetstream.Msg, every time.Duration) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				_ = msg.InProgress()
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}

// receivedRecord is the value of an AXIS_RECEIVED marker: enough to send
// the delivered receipt again after a crash.
type receivedRecord struct {
	At      time.Time      `json:"at"`
	Digest  string         `json:"digest"`
	Details map[string]any `json:"details,omitempty"`
}

// Test hooks simulating a crash at a point of process; nil outside tests.
var testHookBeforeMarker, testHookBeforeAck func(e *envelope.Envelope) bool

// Quarantine stores a message of agency's mailbox that could not be
// processed, with its reason, so it stays on record and can be re-driven.
// A client with an agency's credentials asks the bus, which reads the copy
// from the record itself; the bus's own client writes the entry directly.
// Either way the entry's headers come from the record message.
func (c *Client) Quarantine(ctx context.Context, agency string, msg jetstream.Msg, meta *jetstream.MsgMetadata, reason string) error {
	if meta == nil {
		return fmt.Errorf("quarantine message of the mailbox of %s: no record sequence", agency)
	}
	return c.quarantine(ctx, agency, msg.Subject(), msg.Data(), meta.Sequence.Stream, meta.NumDelivered, reason)
}

// quarantine stores the copy at seq of the record (subject and data as the
// record holds them) with its reason; quarantining the same copy twice is
// a no-op.
func (c *Client) quarantine(ctx context.Context, agency, subject string, data []byte, seq, deliveries uint64, reason string) error {
	if c.opts.agency != "" {
		return c.requestQuarantine(ctx, agency, seq, deliveries, reason)
	}
	_, err := record.WriteMailboxQuarantine(ctx, c.js, agency, subject, data, seq, deliveries, reason)
	return err
}
