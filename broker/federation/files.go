package federation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/storage"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// chunkSize is the attachment bytes per federation message: well under the
// 1 MiB NATS payload limit.
const chunkSize = 512 << 10

// errMissingChunks: an attachment's messages have not all arrived (yet).
var errMissingChunks = errors.New("attachment not complete in the inbound stream")

// partsComing: some of an attachment's parts have arrived, the last at
// last.
type partsComing struct {
	last time.Time
	err  error
}

func (p *partsComing) Error() string { return p.err.Error() }
func (p *partsComing) Unwrap() error { return p.err }

// pushFiles puts the attachments of e into the outbound stream for bus
// dest, ahead of the envelope: store and forward covers them as it covers
// envelopes, and the destination does not need this bus to be reachable
// when its recipient reads them. Message ids make a repeated push (a
// second recipient on the same bus, a retry) cost nothing.
func (s *Service) pushFiles(ctx context.Context, dest string, e *envelope.Envelope) error {
	done := map[string]bool{}
	for _, a := range e.Attachments {
		if done[a.SHA256] {
			continue
		}
		done[a.SHA256] = true
		if err := s.pushFile(ctx, dest, e.ID, a); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) pushFile(ctx context.Context, dest, envID string, a envelope.Attachment) error {
	rc, err := s.c.OpenAttachment(ctx, a)
	if err != nil {
		return fmt.Errorf("send attachment %s of %s to bus %s: %w", a.Name, envID, dest, err)
	}
	defer rc.Close()
	n := partsOf(a.Size)
	subject := fedSubject{Dest: dest, Kind: kindFile, A: envID, B: a.SHA256}.subject(outPrefix)
	buf := make([]byte, chunkSize)
	futures := make([]jetstream.PubAckFuture, 0, 16)
	wait := func() error {
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return fmt.Errorf("send attachment %s of %s to bus %s: %w", a.Name, envID, dest, err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		futures = futures[:0]
		return nil
	}
	for i := int64(1); i <= n; i++ {
		want := partLen(a.Size, i)
		if _, err := io.ReadFull(rc, buf[:want]); err != nil {
			return s.fileError(a, envID, dest, err)
		}
		m := &nats.Msg{Subject: subject, Data: append([]byte(nil), buf[:want]...), Header: nats.Header{}}
		m.Header.Set(jetstream.MsgIDHeader, "f."+envID+"."+a.SHA256+"."+strconv.FormatInt(i, 10)+"."+dest)
		m.Header.Set(HeaderChunk, strconv.FormatInt(i, 10)+"/"+strconv.FormatInt(n, 10))
		m.Header.Set(HeaderFileSize, strconv.FormatInt(a.Size, 10))
		m.Header.Set(HeaderFileType, a.MediaType)
		f, err := s.js.PublishMsgAsync(m, jetstream.WithExpectStream(OutStream))
		if err != nil {
			return fmt.Errorf("send attachment %s of %s to bus %s: %w", a.Name, envID, dest, err)
		}
		futures = append(futures, f)
		if len(futures) == cap(futures) {
			if err := wait(); err != nil {
				return err
			}
		}
	}
	// The verifying reader checks size and SHA-256 at the end.
	if _, err := rc.Read(buf[:1]); err != io.EOF {
		if err == nil {
			err = storage.ErrSizeMismatch
		}
		return s.fileError(a, envID, dest, err)
	}
	return wait()
}

func (s *Service) fileError(a envelope.Attachment, envID, dest string, err error) error {
	if errors.Is(err, storage.ErrDigestMismatch) || errors.Is(err, storage.ErrSizeMismatch) || errors.Is(err, io.ErrUnexpectedEOF) {
		return refused("attachment %s of %s: the stored object does not match the manifest: %w", a.Name, envID, err)
	}
	return fmt.Errorf("send attachment %s of %s to bus %s: %w", a.Name, envID, dest, err)
}

// fetchFiles makes sure every attachment of e is in this bus's store:
// those already there (same SHA-256 and size) are kept, the others are
// rebuilt from their messages in the inbound stream (relayed from origin;
// "" for those of an earlier version). The store hashes what it receives;
// an object that does not match the signed manifest refuses the envelope.
func (s *Service) fetchFiles(ctx context.Context, origin string, e *envelope.Envelope) error {
	done := map[string]bool{}
	for _, a := range e.Attachments {
		if done[a.SHA256] {
			continue
		}
		done[a.SHA256] = true
		obj, err := s.store.Stat(ctx, a.Key)
		if err == nil && obj.SHA256 == a.SHA256 && obj.Size == a.Size {
			continue
		}
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("attachment %s of %s: %w", a.Name, e.ID, err)
		}
		if err := s.fetchFile(ctx, origin, e.ID, a); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) fetchFile(ctx context.Context, origin, envID string, a envelope.Attachment) error {
	subject := fedSubject{Dest: s.bus, Origin: origin, Kind: kindFile, A: envID, B: a.SHA256}.subject(relayPrefix)
	missing := func(last time.Time) error {
		err := fmt.Errorf("attachment %s of %s: %w", a.Name, envID, errMissingChunks)
		if last.IsZero() {
			return err
		}
		// Still coming: the wait counts from the last part that came.
		return &partsComing{last: last, err: err}
	}
	// A look at the last part first: a copy waiting for parts that have
	// not come costs no consumer each time it looks again.
	last, err := s.inStr.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return missing(time.Time{})
	}
	if err != nil {
		return fmt.Errorf("attachment %s of %s: %w", a.Name, envID, err)
	}
	_, n, err := parseChunk(last.Header.Get(HeaderChunk))
	if err != nil {
		return refused("attachment %s of %s: %w", a.Name, envID, err)
	}
	seqs, newest, err := s.partIndex(ctx, subject, n)
	if err != nil {
		return fmt.Errorf("attachment %s of %s: %w", a.Name, envID, err)
	}
	if int64(len(seqs)) < n {
		return missing(newest)
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(s.copyParts(ctx, seqs, pw))
	}()
	obj, err := s.store.Put(ctx, pr, storage.PutOptions{Size: a.Size, MediaType: a.MediaType})
	pr.CloseWithError(errors.New("put ended"))
	if err != nil {
		return fmt.Errorf("attachment %s of %s: store: %w", a.Name, envID, err)
	}
	if obj.SHA256 != a.SHA256 || obj.Size != a.Size {
		return refused("attachment %s of %s: received %d bytes with SHA-256 %s, the signed manifest says %d bytes %s",
			a.Name, envID, obj.Size, obj.SHA256, a.Size, a.SHA256)
	}
	return nil
}

// partIndex reads the headers of an attachment's parts on subject and
// returns the stream sequence of each part 1..n that arrived (a part seen
// twice counts once), and when the newest arrived. Parts may have been
// stored out of order: a relay hands a message out again later when it
// cannot take it yet.
func (s *Service) partIndex(ctx context.Context, subject string, n int64) (map[int64]uint64, time.Time, error) {
	// Gone soon after: a busy bus reads many attachments, and a stream
	// takes a bounded number of consumers.
	cons, err := s.js.OrderedConsumer(ctx, s.inboundStream(), jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject},
		HeadersOnly: true, InactiveThreshold: 5 * time.Second})
	if err != nil {
		return nil, time.Time{}, err
	}
	pending := uint64(0)
	if info := cons.CachedInfo(); info != nil {
		pending = info.NumPending
	}
	seqs := map[int64]uint64{}
	var newest time.Time
	for pending > 0 {
		batch, err := cons.Fetch(int(min(pending, 256)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, time.Time{}, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			pending--
			meta, err := m.Metadata()
			if err != nil {
				return nil, time.Time{}, err
			}
			if meta.Timestamp.After(newest) {
				newest = meta.Timestamp
			}
			i, cnt, err := parseChunk(m.Headers().Get(HeaderChunk))
			if err != nil || cnt != n {
				return nil, time.Time{}, fmt.Errorf("%w: file part %d of %s says %q, the last says %d parts", ErrRefused, meta.Sequence.Stream, subject, m.Headers().Get(HeaderChunk), n)
			}
			if _, seen := seqs[i]; !seen {
				seqs[i] = meta.Sequence.Stream
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, time.Time{}, err
		}
		if got == 0 {
			break
		}
	}
	return seqs, newest, nil
}

// copyParts writes parts 1..len(seqs) in order, read by their sequences.
func (s *Service) copyParts(ctx context.Context, seqs map[int64]uint64, w io.Writer) error {
	for i := int64(1); i <= int64(len(seqs)); i++ {
		m, err := s.inStr.GetMsg(ctx, seqs[i])
		if err != nil {
			return fmt.Errorf("file part %d: %w", i, err)
		}
		if _, err := w.Write(m.Data); err != nil {
			return err
		}
	}
	return nil
}

// parseChunk reads a HeaderChunk value "i/n": part i (from 1) of n.
func parseChunk(v string) (i, n int64, err error) {
	a, b, ok := strings.Cut(v, "/")
	i, err1 := strconv.ParseInt(a, 10, 64)
	n, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil || i < 1 || i > n || n > maxParts {
		return 0, 0, fmt.Errorf("%w: bad file part header %q", ErrRefused, v)
	}
	return i, n, nil
}

// maxParts bounds the parts of one attachment (far above any size the bus
// accepts).
const maxParts = 1 << 20

// partsOf is the number of parts of an attachment of size bytes, and
// partLen the length of part i.
func partsOf(size int64) int64 { return max(1, (size+chunkSize-1)/chunkSize) }

func partLen(size, i int64) int64 {
	if i < partsOf(size) {
		return chunkSize
	}
	return size - (partsOf(size)-1)*chunkSize
}

// inflightTTL is how long the national remembers the attachments of an
// envelope it relayed: their parts follow the envelope in the same stream.
const inflightTTL = 7 * 24 * time.Hour

// inflightKey names an attachment sha of envelope env relayed from origin
// to dest.
func inflightKey(origin, env, sha, dest string) string {
	return origin + "." + env + "." + sha + "." + dest
}

// expectParts records, on the national bus, the attachments of envelope e
// that it relays from origin to dest: their parts may follow.
func (s *Service) expectParts(ctx context.Context, origin, dest string, e *envelope.Envelope) error {
	for _, a := range e.Attachments {
		key := inflightKey(origin, e.ID, a.SHA256, dest)
		if _, err := s.inflight.Put(ctx, key, []byte(strconv.FormatInt(a.Size, 10))); err != nil {
			return fmt.Errorf("remember attachment %s of %s: %w", a.Name, e.ID, err)
		}
	}
	return nil
}

// checkPart lets a file part from origin through only when the national
// relayed, from origin to the part's destination, an envelope listing that
// attachment, and when the part is at its place in it (number, count and
// length agree with the attachment's signed size): a member cannot pass
// anything else through the national, nor more bytes than its agencies'
// signed envelopes declare.
func (s *Service) checkPart(ctx context.Context, origin string, fs fedSubject, msg jetstream.Msg, meta *jetstream.MsgMetadata) error {
	key := inflightKey(origin, fs.A, fs.B, fs.Dest)
	e, err := s.inflight.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrInvalidKey):
		return fmt.Errorf("%w: file part %s: no envelope of bus %s lists it", errDrop, msg.Subject(), origin)
	case errors.Is(err, jetstream.ErrKeyNotFound):
		if !s.gate(origin).mayCome(fs.A) {
			return fmt.Errorf("%w: file part %s: no envelope relayed from bus %s lists it", errDrop, msg.Subject(), origin)
		}
		return &retryAfter{d: partRetry(meta.NumDelivered), err: fmt.Errorf("file part %s: its envelope has not been relayed yet", msg.Subject())}
	case err != nil:
		return fmt.Errorf("file part %s: %w", msg.Subject(), err)
	}
	size, err := strconv.ParseInt(string(e.Value()), 10, 64)
	if err != nil {
		return fmt.Errorf("file part %s: bad record %q", msg.Subject(), e.Value())
	}
	i, n, err := parseChunk(msg.Headers().Get(HeaderChunk))
	if err != nil || n != partsOf(size) || int64(len(msg.Data())) != partLen(size, i) ||
		msg.Headers().Get(HeaderFileSize) != strconv.FormatInt(size, 10) {
		return fmt.Errorf("%w: file part %s (%q, %d bytes) does not fit the attachment's signed size of %d bytes",
			errDrop, msg.Subject(), msg.Headers().Get(HeaderChunk), len(msg.Data()), size)
	}
	return nil
}

// relayGate knows, for the relay of one origin, which envelopes may still
// be relayed: those it handed back for a retry (an addressee not in the
// directory yet, the origin over its RelayQuota), whose parts then come
// before them; their parts wait as long as the envelope keeps being handed
// back, and AttachmentWait more. A part of any other envelope not relayed
// is dropped at once, so a flood of parts costs the national one look
// each; for AttachmentWait after the relay starts, when it cannot know
// what it handed back before, parts wait.
type relayGate struct {
	mu      sync.Mutex
	started time.Time
	grace   time.Duration
	waiting map[string]time.Time // envelope id → last handed back
}

// maxWaiting bounds the envelopes a gate remembers.
const maxWaiting = 1 << 14

func (s *Service) gate(origin string) *relayGate {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.gates[origin]
	if g == nil {
		g = &relayGate{started: time.Now(), grace: s.cfg.AttachmentWait, waiting: map[string]time.Time{}}
		s.gates[origin] = g
	}
	return g
}

func (g *relayGate) wait(env string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.waiting[env]; ok {
		g.waiting[env] = time.Now()
		return
	}
	if len(g.waiting) >= maxWaiting {
		// Forget those handed back long ago (their parts were dropped).
		for id, at := range g.waiting {
			if time.Since(at) > 2*g.grace {
				delete(g.waiting, id)
			}
		}
		if len(g.waiting) >= maxWaiting {
			return
		}
	}
	g.waiting[env] = time.Now()
}

func (g *relayGate) done(env string) {
	g.mu.Lock()
	delete(g.waiting, env)
	g.mu.Unlock()
}

func (g *relayGate) mayCome(env string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	at, ok := g.waiting[env]
	return (ok && time.Since(at) < g.grace) || time.Since(g.started) < g.grace
}
