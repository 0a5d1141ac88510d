// Package s3 is the attachment store on an S3-compatible object store
// (MinIO, AWS S3, Ceph RGW...), through minio-go.
//
// Objects live under their content address sha256/<hex>. A Put streams the
// caller's reader once: it hashes the bytes on their way to a temporary
// object tmp/<random>, then copies that object server-side to its content
// address (unless the same bytes are there already) and removes the
// temporary one. An interrupted Put therefore never shows under a content
// address; its multipart upload is aborted and its temporary object
// removed. Sweep clears what a crashed process could not.
//
// Memory is bounded per Put by Config.Concurrency buffers of
// Config.PartSize (one of 16 MiB by default), whatever the object's size.
//
// Every request is retried on network errors, 5xx statuses and throttling,
// Config.MaxRetries attempts in all with backoff (about 2 s for the
// default 5), from buffered bytes only. Then a missing object is
// storage.ErrNotFound, an endpoint that cannot serve (unreachable, timing
// out, 5xx, throttling) storage.ErrUnavailable; messages name the
// operation, the key, the bucket and the endpoint.
package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/docaxis/docaxis/storage"
)

// TempPrefix starts the names of objects being uploaded.
const TempPrefix = "tmp/"

// smallPeek is how much of a stream of unknown size is read before deciding
// between one PUT from memory and a multipart upload.
const smallPeek = 1 << 20

// cleanupTimeout bounds the removal of a failed Put's leftovers, which runs
// even when the caller's context is done.
const cleanupTimeout = 30 * time.Second

type store struct {
	c        *minio.Client
	bucket   string
	endpoint string
	partSize uint64
	threads  uint
	// copyPartSize is the part size of server-side copies; 0 means the
	// largest (5 GiB), so only bigger objects take a multipart copy. Tests
	// lower it to exercise that path.
	copyPartSize uint64
	// onTemp, if set, is told the temporary name of each Put, so that tests
	// can look for its multipart upload (MinIO lists them by exact name).
	onTemp func(name string)
}

// New connects to the store described by cfg and creates its bucket when
// missing. An unreachable endpoint fails with storage.ErrUnavailable after
// cfg.MaxRetries attempts, or when ctx is done. The store is also a
// storage.Sweeper.
func New(ctx context.Context, cfg Config) (storage.Store, error) {
	s, err := newStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func newStore(ctx context.Context, cfg Config) (*store, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	s := &store{
		c:        c,
		bucket:   cfg.Bucket,
		endpoint: cfg.Endpoint,
		partSize: cfg.PartSize,
		threads:  uint(cfg.Concurrency),
	}
	ok, err := c.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, s.wrap("check bucket", "", err)
	}
	if !ok {
		err := c.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region})
		// Another process may have created it in between.
		if err != nil && minio.ToErrorResponse(err).Code != minio.BucketAlreadyOwnedByYou {
			return nil, s.wrap("create bucket", "", err)
		}
	}
	return s, nil
}

func newClient(cfg Config) (*minio.Client, error) {
	tr := cfg.Transport
	if tr == nil {
		t, err := minio.DefaultTransport(cfg.Secure)
		if err != nil {
			return nil, fmt.Errorf("s3: transport: %w", err)
		}
		t.DialContext = (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext
		t.ResponseHeaderTimeout = cfg.ResponseTimeout
		tr = t
	}
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken),
		Secure:     cfg.Secure,
		Region:     cfg.Region,
		Transport:  tr,
		MaxRetries: cfg.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: client of %s: %w", cfg.Endpoint, err)
	}
	return c, nil
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
	if err != nil && err != io.EOF {
		err = sourceError{err}
	}
	return n, err
}

// sourceError carries an error of the caller's reader past minio-go, which
// takes an io.ErrUnexpectedEOF from its source for the end of the stream:
// a source cut short (a dropped HTTP upload) would be stored truncated.
type sourceError struct{ err error }

func (e sourceError) Error() string { return e.err.Error() }
func (e sourceError) Unwrap() error { return e.err }

func (s *store) Put(ctx context.Context, r io.Reader, opts storage.PutOptions) (storage.Object, error) {
	tmp := TempPrefix + rand.Text()
	if s.onTemp != nil {
		s.onTemp(tmp)
	}
	hr := &hashingReader{r: r, h: sha256.New(), progress: opts.Progress}
	contentType := opts.MediaType
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	body, size, err := s.body(hr, opts.Size)
	if err != nil {
		return storage.Object{}, fmt.Errorf("put %s in bucket %s: read: %w", tmp, s.bucket, err)
	}
	// Whatever happens, the temporary object goes; removing a missing
	// object is not an error in S3.
	defer s.cleanup(ctx, tmp)

	// Size -1 takes minio-go's streaming multipart upload, which fills
	// one buffer of PartSize (Concurrency of them with ConcurrentStreamParts)
	// and aborts the upload on any error, including a cancelled ctx.
	_, err = s.c.PutObject(ctx, s.bucket, tmp, body, size, minio.PutObjectOptions{
		ContentType:           contentType,
		PartSize:              s.partSize,
		NumThreads:            s.threads,
		ConcurrentStreamParts: s.threads > 1,
	})
	if err != nil {
		return storage.Object{}, s.wrap("put", tmp, err)
	}
	sum := hex.EncodeToString(hr.h.Sum(nil))
	key := storage.Key(sum)
	obj := storage.Object{Key: key, SHA256: sum, Size: hr.n}

	// Same bytes stored before: keep one copy. A size that differs means
	// the stored object was damaged; the copy below replaces it.
	st, err := s.c.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err == nil && st.Size == obj.Size {
		obj.ModTime = st.LastModified
		return obj, nil
	}
	if err != nil && !isNotFound(err) {
		return storage.Object{}, s.wrap("put: stat", key, err)
	}
	// ComposeObject copies server-side, in parts when the object is over
	// 5 GiB, where a plain CopyObject would fail.
	info, err := s.c.ComposeObject(ctx, minio.CopyDestOptions{
		Bucket:          s.bucket,
		Object:          key,
		ContentType:     contentType,
		ReplaceMetadata: true,
		UserMetadata:    map[string]string{"Content-Type": contentType},
		PartSize:        s.copyPartSize,
		NumThreads:      4,
	}, minio.CopySrcOptions{Bucket: s.bucket, Object: tmp})
	if err != nil {
		return storage.Object{}, s.wrap("put: copy "+tmp+" to", key, err)
	}
	obj.ModTime = info.LastModified
	if obj.ModTime.IsZero() { // a multipart copy does not say
		if st, err := s.c.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{}); err == nil {
			obj.ModTime = st.LastModified
		} else {
			obj.ModTime = time.Now().UTC()
		}
	}
	return obj, nil
}

// body chooses how to send what r yields. What fits in a small buffer goes
// in one PUT from memory, which minio-go can retry; the rest streams as a
// multipart upload of unknown size. The size hint only sizes the buffer: a
// wrong hint costs memory, never bytes.
func (s *store) body(r io.Reader, hint int64) (io.Reader, int64, error) {
	var peek int64
	switch {
	case hint < 0:
		peek = smallPeek
	case hint < int64(s.partSize):
		peek = hint + 1 // one more byte tells a wrong hint
	default:
		return r, -1, nil
	}
	buf := make([]byte, peek)
	n, err := io.ReadFull(r, buf)
	switch err {
	case io.EOF, io.ErrUnexpectedEOF:
		return bytes.NewReader(buf[:n]), int64(n), nil
	case nil:
		return io.MultiReader(bytes.NewReader(buf), r), -1, nil
	default:
		return nil, 0, err
	}
}

// cleanup removes the temporary object of a Put, even if ctx is done.
func (s *store) cleanup(ctx context.Context, tmp string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_ = s.c.RemoveObject(ctx, s.bucket, tmp, minio.RemoveObjectOptions{})
}

func (s *store) Get(ctx context.Context, key string) (io.ReadCloser, storage.Object, error) {
	sum, err := storage.CheckKey(key)
	if err != nil {
		return nil, storage.Object{}, err
	}
	o, err := s.c.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, storage.Object{}, s.wrap("get", key, err)
	}
	// Stat sends the GET; reading goes on with its response body.
	st, err := o.Stat()
	if err != nil {
		o.Close()
		return nil, storage.Object{}, s.wrap("get", key, err)
	}
	return &objectReader{o: o, s: s, key: key}, storage.Object{Key: key, SHA256: sum, Size: st.Size, ModTime: st.LastModified}, nil
}

// objectReader maps the errors of reading an object to the sentinels.
type objectReader struct {
	o   *minio.Object
	s   *store
	key string
}

func (r *objectReader) Read(p []byte) (int, error) {
	n, err := r.o.Read(p)
	if err != nil && err != io.EOF {
		err = r.s.wrap("read", r.key, err)
	}
	return n, err
}

func (r *objectReader) Close() error { return r.o.Close() }

func (s *store) Stat(ctx context.Context, key string) (storage.Object, error) {
	sum, err := storage.CheckKey(key)
	if err != nil {
		return storage.Object{}, err
	}
	st, err := s.c.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return storage.Object{}, s.wrap("stat", key, err)
	}
	return storage.Object{Key: key, SHA256: sum, Size: st.Size, ModTime: st.LastModified}, nil
}

func (s *store) Delete(ctx context.Context, key string) error {
	if _, err := storage.CheckKey(key); err != nil {
		return err
	}
	if err := s.c.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil && !isNotFound(err) {
		return s.wrap("delete", key, err)
	}
	return nil
}

func (s *store) List(ctx context.Context, fn func(storage.Object) error) error {
	// Breaking out of the listing must stop its pager.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for o := range s.c.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: storage.KeyPrefix, Recursive: true}) {
		if o.Err != nil {
			return s.wrap("list", storage.KeyPrefix, o.Err)
		}
		sum, err := storage.CheckKey(o.Key)
		if err != nil {
			continue // not ours
		}
		if err := fn(storage.Object{Key: o.Key, SHA256: sum, Size: o.Size, ModTime: o.LastModified}); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return s.wrap("list", storage.KeyPrefix, err)
	}
	return nil
}

// Sweep removes what interrupted Puts left behind and is older than
// olderThan: temporary objects (a process killed between upload and copy)
// and unfinished multipart uploads (a process killed mid-upload). With
// dryRun it only counts them. It implements storage.Sweeper.
func (s *store) Sweep(ctx context.Context, olderThan time.Duration, dryRun bool) (int, error) {
	cutoff := time.Now().Add(-olderThan)
	n := 0
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for o := range s.c.ListObjectsIter(lctx, s.bucket, minio.ListObjectsOptions{Prefix: TempPrefix, Recursive: true}) {
		if o.Err != nil {
			return n, s.wrap("sweep: list", TempPrefix, o.Err)
		}
		if !o.LastModified.Before(cutoff) {
			continue
		}
		if !dryRun {
			if err := s.c.RemoveObject(ctx, s.bucket, o.Key, minio.RemoveObjectOptions{}); err != nil && !isNotFound(err) {
				return n, s.wrap("sweep: delete", o.Key, err)
			}
		}
		n++
	}
	for u := range s.c.ListIncompleteUploads(lctx, s.bucket, "", true) {
		if u.Err != nil {
			return n, s.wrap("sweep: list uploads", "", u.Err)
		}
		if !u.Initiated.Before(cutoff) {
			continue
		}
		if !strings.HasPrefix(u.Key, TempPrefix) && !strings.HasPrefix(u.Key, storage.KeyPrefix) {
			continue // not ours
		}
		if !dryRun {
			if err := s.c.RemoveIncompleteUpload(ctx, s.bucket, u.Key); err != nil && !isNotFound(err) {
				return n, s.wrap("sweep: abort upload of", u.Key, err)
			}
		}
		n++
	}
	return n, nil
}

func isNotFound(err error) bool {
	switch minio.ToErrorResponse(err).Code {
	case minio.NoSuchKey, minio.NoSuchUpload:
		return true
	}
	return false
}

// wrap maps err to the storage sentinels, naming the operation, the key,
// the bucket and the endpoint. The original error stays in the chain.
func (s *store) wrap(op, key string, err error) error {
	what := op
	if key != "" {
		what += " " + key
	}
	var src sourceError
	switch {
	case errors.As(err, &src):
		// The caller's reader failed, not the store.
		return fmt.Errorf("%s in bucket %s: read: %w", what, s.bucket, src.err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s in bucket %s: %w", what, s.bucket, err)
	case isNotFound(err):
		return fmt.Errorf("%w: %s (bucket %s): %w", storage.ErrNotFound, key, s.bucket, err)
	case unavailable(err):
		return fmt.Errorf("%w: %s in bucket %s at %s: %w", storage.ErrUnavailable, what, s.bucket, s.endpoint, err)
	}
	return fmt.Errorf("%s in bucket %s: %w", what, s.bucket, err)
}

// unavailable tells errors that say the store cannot serve now (it is
// unreachable, slow or overloaded) from those about the request.
func unavailable(err error) bool {
	if minio.IsNetworkOrHostDown(err, false) {
		return true
	}
	resp := minio.ToErrorResponse(err)
	switch resp.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusTooManyRequests:
		return true
	}
	switch resp.Code {
	case "SlowDown", "ServiceUnavailable", "RequestTimeout", "XMinioServerNotInitialized":
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF)
}
