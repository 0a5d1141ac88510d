package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

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
		return nil, fmt.Errorf("%w: object store %s: %v", ErrUnavailable, cfg.Bucket, err)
	}
	return &jsStore{obs: obs, bucket: cfg.Bucket}, nil
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

// newHashingReader is shared by the stores.
func newHashingReader(r io.Reader, progress func(int64)) *hashingReader {
	return &hashingReader{r: r, h: sha256.New(), progress: progress}
}

func (h *hashingReader) sum() string { return hex.EncodeToString(h.h.Sum(nil)) }

func (s *jsStore) Put(ctx context.Context, r io.Reader, opts PutOptions) (Object, error) {
	// Upload under a temporary name while hashing, then rename to the
	// content address: the user's file is read once, and an interrupted
	// upload never appears under a content address.
	tmp := "tmp/" + nuid.Next()
	hr := newHashingReader(r, opts.Progress)
	info, err := s.obs.Put(ctx, jetstream.ObjectMeta{Name: tmp}, hr)
	if err != nil {
		_ = s.obs.Delete(context.WithoutCancel(ctx), tmp)
		return Object{}, s.wrap("put", tmp, err)
	}
	sum := hr.sum()
	key := Key(sum)
	obj := Object{Key: key, SHA256: sum, Size: int64(info.Size), ModTime: info.ModTime}
	err = s.obs.UpdateMeta(ctx, tmp, jetstream.ObjectMeta{Name: key, Description: opts.MediaType})
	if errors.Is(err, jetstream.ErrObjectAlreadyExists) {
		// Same bytes stored before: keep one copy.
		if derr := s.obs.Delete(ctx, tmp); derr != nil {
			return Object{}, s.wrap("delete duplicate upload", tmp, derr)
		}
		return obj, nil
	}
	if err != nil {
		_ = s.obs.Delete(context.WithoutCancel(ctx), tmp)
		return Object{}, s.wrap("rename upload to", key, err)
	}
	return obj, nil
}

func (s *jsStore) Get(ctx context.Context, key string) (io.ReadCloser, Object, error) {
	sum, err := CheckKey(key)
	if err != nil {
		return nil, Object{}, err
	}
	res, err := s.obs.Get(ctx, key)
	if err != nil {
		return nil, Object{}, s.wrap("get", key, err)
	}
	info, err := res.Info()
	if err != nil {
		res.Close()
		return nil, Object{}, s.wrap("get", key, err)
	}
	return res, Object{Key: key, SHA256: sum, Size: int64(info.Size), ModTime: info.ModTime}, nil
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
		errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("%w: %s %s: %v", ErrUnavailable, op, key, err)
	}
	return fmt.Errorf("%s %s in bucket %s: %w", op, key, s.bucket, err)
}
