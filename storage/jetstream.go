package storage

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// DefaultBucket is the object-store bucket of the embedded store.
const DefaultBucket = "AXIS_FILES"

// JetStreamConfig configures the embedded store.
type JetStreamConfig struct {
	Bucket   string // default DefaultBucket
	Replicas int    // default 1
}

type jsStore struct {
	obs    jetstream.ObjectStore
	stream jetstream.Stream
	// pub publishes chunks: a context of its own, so that the caller's
	// async publish settings (error handler, pending limit) do not apply.
	pub    jetstream.JetStream
	bucket string
}

// NewJetStream returns the embedded store: a JetStream object store in the
// same NATS system as the bus, so a remote client needs only the NATS URL.
// The bucket is created when missing.
func NewJetStream(ctx context.Context, js jetstream.JetStream, cfg JetStreamConfig) (Store, error) {
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultBucket
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	obs, err := js.ObjectStore(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		obs, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket:      cfg.Bucket,
			Description: "docaxis attachments, content-addressed by SHA-256",
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
			Compression: false,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			obs, err = js.ObjectStore(ctx, cfg.Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: object store %s: %w", ErrUnavailable, cfg.Bucket, err)
	}
	stream, err := js.Stream(ctx, "OBJ_"+cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("%w: stream of object store %s: %w", ErrUnavailable, cfg.Bucket, err)
	}
	pub, err := jetstream.New(js.Conn(), jetstream.WithPublishAsyncTimeout(ackTimeout))
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", cfg.Bucket, err)
	}
	return &jsStore{obs: obs, stream: stream, pub: pub, bucket: cfg.Bucket}, nil
}

// hashingReader hashes and counts what passes and reports progress.
type hashingReader struct {
	r        io.Reader
	h        hash.Hash
	n        int64
	progress func(int64)
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if n > 0 {
		h.h.Write(p[:n])
		h.n += int64(n)
		if h.progress != nil {
			h.progress(h.n)
		}
	}
	return n, err
}

// newHashingReader hashes what an upload reads.
func newHashingReader(r io.Reader, progress func(int64)) *hashingReader {
	return &hashingReader{r: r, h: sha256.New(), progress: progress}
}

func (h *hashingReader) sum() string { return hex.EncodeToString(h.h.Sum(nil)) }

// Chunking of uploads. The object store's own Put publishes chunks with up
// to 4000 acknowledgements pending, so a fast reader can queue hundreds of
// MiB in the (often embedded) server until it drops them with "429 too many
// requests". Put publishes the chunks itself and keeps at most putWindow of
// them unacknowledged: at most putWindow*chunkSize bytes in flight per Put.
const (
	chunkSize  = 128 << 10 // the object store's default
	putWindow  = 32        // 4 MiB in flight
	ackTimeout = 30 * time.Second
	// cleanupTimeout bounds the removal of a failed upload's chunks, which
	// runs even when the caller's context is done.
	cleanupTimeout = ackTimeout + 5*time.Second
)

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// inflight is a published chunk whose acknowledgement is awaited; its
// buffer is reused only once the server has answered, since the publisher
// may resend it.
type inflight struct {
	ack   jetstream.PubAckFuture
	buf   *[]byte
	chunk uint32 // its index in the object
}

// Put streams r as chunks under a fresh NUID while hashing it, then
// publishes the object's meta under its content address, in the layout of
// the JetStream object store (ADR-20), so Get, Stat, List and other NATS
// clients read it as any object. The meta is published only if the content
// address holds no live object, checked by the server (expected last
// sequence on the meta subject): of concurrent Puts of the same bytes one
// wins and the others drop their chunks, none is orphaned. Until then an
// upload is only chunks, which are purged if it fails, so nothing appears
// under a content address.
func (s *jsStore) Put(ctx context.Context, r io.Reader, opts PutOptions) (obj Object, err error) {
	id := nuid.Next()
	chunkSubj := chunkSubject(s.bucket, id)
	hr := newHashingReader(r, opts.Progress)
	var (
		pending []inflight
		size    int64
		chunks  uint32
		index   []uint64 // jsreader.go
	)
	defer func() {
		if err != nil {
			// In the background: the caller hears of the failure at once,
			// not after the chunks in flight were answered (up to
			// ackTimeout in a failover, well past the caller's deadline).
			go s.abandon(ctx, chunkSubj, pending)
		}
	}()
	// settle waits for the oldest acknowledgement.
	settle := func() error {
		p := pending[0]
		select {
		case ack := <-p.ack.Ok():
			if p.chunk%chunkStride == 0 {
				index = append(index, ack.Sequence)
			}
		case err := <-p.ack.Err():
			return s.wrap("put chunk of", "upload "+id, err)
		case <-ctx.Done():
			return s.wrap("put", "upload "+id, ctx.Err())
		}
		chunkPool.Put(p.buf)
		pending = pending[1:]
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return Object{}, s.wrap("put", "upload "+id, err)
		}
		buf := chunkPool.Get().(*[]byte)
		n, rerr := fill(hr, *buf)
		if n > 0 {
			ack, err := s.pub.PublishMsgAsync(&nats.Msg{Subject: chunkSubj, Data: (*buf)[:n]})
			if err != nil {
				chunkPool.Put(buf)
				return Object{}, s.wrap("put chunk of", "upload "+id, err)
			}
			pending = append(pending, inflight{ack: ack, buf: buf, chunk: chunks})
			size += int64(n)
			chunks++
		} else {
			chunkPool.Put(buf)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return Object{}, s.wrap("put: read", "upload "+id, rerr)
		}
		for len(pending) >= putWindow {
			if err := settle(); err != nil {
				return Object{}, err
			}
		}
	}
	for len(pending) > 0 {
		if err := settle(); err != nil {
			return Object{}, err
		}
	}

	sum := hr.sum()
	key := Key(sum)
	info := &jetstream.ObjectInfo{
		ObjectMeta: jetstream.ObjectMeta{
			Name:        key,
			Description: opts.MediaType,
			Opts:        &jetstream.ObjectMetaOptions{ChunkSize: chunkSize},
		},
		Bucket: s.bucket,
		NUID:   id,
		Size:   uint64(size),
		Chunks: chunks,
		Digest: jetstream.GetObjectDigestValue(hr.h),
	}
	if len(index) > 0 {
		info.Metadata = map[string]string{chunkIndexKey: encodeChunkIndex(index)}
	}
	won, modTime, err := s.claim(ctx, info)
	if err != nil {
		return Object{}, s.wrap("put", key, err)
	}
	if !won {
		// Same bytes stored before: keep one copy.
		go s.abandon(ctx, chunkSubj, nil)
	}
	return Object{Key: key, SHA256: sum, Size: size, ModTime: modTime}, nil
}

// fill reads into buf until it is full, r ends (io.EOF) or r fails. Unlike
// io.ReadFull it passes on an io.ErrUnexpectedEOF from r: a source cut
// short must fail the Put, not end it with a truncated object.
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// claim publishes info as the meta of info.Name unless a live object is
// there already; it reports whether it did, and the object's time.
func (s *jsStore) claim(ctx context.Context, info *jetstream.ObjectInfo) (bool, time.Time, error) {
	subj := fmt.Sprintf("$O.%s.M.%s", s.bucket, base64.URLEncoding.EncodeToString([]byte(info.Name)))
	data, err := json.Marshal(info)
	if err != nil {
		return false, time.Time{}, err
	}
	// A lost race is retried, because the winner may have been a Delete.
	for range 5 {
		var last uint64
		m, err := s.stream.GetLastMsgForSubject(ctx, subj)
		switch {
		case err == nil:
			var cur jetstream.ObjectInfo
			if err := json.Unmarshal(m.Data, &cur); err != nil {
				return false, time.Time{}, fmt.Errorf("%w: %v", jetstream.ErrBadObjectMeta, err)
			}
			if !cur.Deleted {
				return false, m.Time, nil
			}
			last = m.Sequence
		case errors.Is(err, jetstream.ErrMsgNotFound):
		default:
			return false, time.Time{}, err
		}
		msg := &nats.Msg{Subject: subj, Header: nats.Header{}, Data: data}
		msg.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
		_, err = s.pub.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(last))
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			continue
		}
		if err != nil {
			return false, time.Time{}, err
		}
		return true, time.Now().UTC(), nil
	}
	return false, time.Time{}, fmt.Errorf("meta of %s kept changing while publishing it", info.Name)
}

// abandon waits for the chunks still in flight, so none lands after the
// purge, then purges the chunks of an upload that will not be kept. It runs
// even if ctx is done (a cancelled upload must not leave its chunks
// behind), in the background of the Put that gave up the upload.
func (s *jsStore) abandon(ctx context.Context, chunkSubj string, pending []inflight) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	for _, p := range pending {
		select {
		case <-p.ack.Ok():
		case <-p.ack.Err():
		case <-ctx.Done():
			return
		}
	}
	_ = s.stream.Purge(ctx, jetstream.WithPurgeSubject(chunkSubj))
}

func (s *jsStore) Get(ctx context.Context, key string) (io.ReadCloser, Object, error) {
	sum, err := CheckKey(key)
	if err != nil {
		return nil, Object{}, err
	}
	info, err := s.obs.GetInfo(ctx, key)
	if err != nil {
		return nil, Object{}, s.wrap("get", key, err)
	}
	obj := Object{Key: key, SHA256: sum, Size: int64(info.Size), ModTime: info.ModTime}
	if info.NUID == "" || info.Opts != nil && info.Opts.Link != nil {
		// A link, or meta not of an upload: the object store's own reader.
		res, err := s.obs.Get(ctx, key)
		if err != nil {
			return nil, Object{}, s.wrap("get", key, err)
		}
		return res, obj, nil
	}
	return newObjectReader(ctx, s, info), obj, nil
}

func (s *jsStore) Stat(ctx context.Context, key string) (Object, error) {
	sum, err := CheckKey(key)
	if err != nil {
		return Object{}, err
	}
	info, err := s.obs.GetInfo(ctx, key)
	if err != nil {
		return Object{}, s.wrap("stat", key, err)
	}
	return Object{Key: key, SHA256: sum, Size: int64(info.Size), ModTime: info.ModTime}, nil
}

func (s *jsStore) Delete(ctx context.Context, key string) error {
	err := s.obs.Delete(ctx, key)
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return s.wrap("delete", key, err)
	}
	return nil
}

func (s *jsStore) List(ctx context.Context, fn func(Object) error) error {
	infos, err := s.obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil
	}
	if err != nil {
		return s.wrap("list", s.bucket, err)
	}
	for _, info := range infos {
		if !strings.HasPrefix(info.Name, KeyPrefix) {
			continue
		}
		obj := Object{Key: info.Name, SHA256: strings.TrimPrefix(info.Name, KeyPrefix), Size: int64(info.Size), ModTime: info.ModTime}
		if err := fn(obj); err != nil {
			return err
		}
	}
	return nil
}

func (s *jsStore) wrap(op, key string, err error) error {
	switch {
	case errors.Is(err, jetstream.ErrObjectNotFound):
		return fmt.Errorf("%w: %s (bucket %s)", ErrNotFound, key, s.bucket)
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrNoResponders), errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrStaleConnection),
		errors.As(err, new(*net.OpError)): // the connection broke under a write
		return fmt.Errorf("%w: %s %s: %v", ErrUnavailable, op, key, err)
	}
	return fmt.Errorf("%s %s in bucket %s: %w", op, key, s.bucket, err)
}
