package storage

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Reading an object of the embedded store from an offset. A download
// resumed after a failover asks for the object from the first byte it has
// not received; without a way to seek, the attachment service read the
// object from its first byte up to there (for a 1 GiB object, up to 1 GiB
// read and dropped before the first byte went out, long enough to time the
// resumed transfer out as well). Put records in the object's meta the
// stream sequence of every chunkStride-th chunk, so a reader starts at
// most chunkStride chunks before the offset.

const (
	// chunkIndexKey names the chunk index in the meta's metadata:
	// comma-separated stream sequences of chunks 0, chunkStride,
	// 2*chunkStride, ... Only Put writes it, and Put writes every chunk
	// but the last full, so chunk k begins at byte k*chunkSize.
	chunkIndexKey = "axis-chunk-index"
	chunkStride   = 64 // 8 MiB of chunks
)

// errNotSeekable: the object has no chunk index (written by another
// client, or by an earlier version); the caller reads past the bytes.
var errNotSeekable = errors.New("object has no chunk index to seek by")

// encodeChunkIndex is the metadata value of seqs.
func encodeChunkIndex(seqs []uint64) string {
	var b strings.Builder
	for i, s := range seqs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(s, 10))
	}
	return b.String()
}

// chunkIndex reads the index of info: nil when the object has none, or one
// that cannot be the index of its chunks.
func chunkIndex(info *jetstream.ObjectInfo) []uint64 {
	v := info.Metadata[chunkIndexKey]
	if v == "" || info.Opts == nil || info.Opts.ChunkSize != chunkSize {
		return nil
	}
	// Counted before it is split: the meta could hold a million commas.
	if want := (int(info.Chunks) + chunkStride - 1) / chunkStride; strings.Count(v, ",")+1 != want {
		return nil
	}
	parts := strings.Split(v, ",")
	seqs := make([]uint64, len(parts))
	for i, p := range parts {
		s, err := strconv.ParseUint(p, 10, 64)
		if err != nil || s == 0 || (i > 0 && s <= seqs[i-1]) {
			return nil
		}
		seqs[i] = s
	}
	return seqs
}

// objectReader reads one object's chunks with an ordered consumer, from
// the first or, after Seek, from the indexed chunk before the offset. It
// reads for as long as its reader takes: the object store's own reader
// fails once the JetStream context's request timeout has passed since the
// Get (10 s for the bus's client), while the attachment service reads only
// as fast as the client's window lets it send. A read from the first byte
// checks the object's digest at the end, as the object store's does; a
// read from an offset is checked by whoever holds the object's SHA-256 (a
// resumed download's client hashed the bytes before it).
type objectReader struct {
	s    *jsStore
	ctx  context.Context
	info *jetstream.ObjectInfo

	started    bool
	it         jetstream.MessagesContext
	index      []uint64  // chunkIndex: Put's chunks, of chunkSize but the last
	digest     hash.Hash // from the first byte only
	next       int64     // index of the next chunk to come
	skipChunks int64
	skipBytes  int64
	pos        int64
	buf        []byte
}

func newObjectReader(ctx context.Context, s *jsStore, info *jetstream.ObjectInfo) *objectReader {
	return &objectReader{s: s, ctx: ctx, info: info, index: chunkIndex(info)}
}

// open starts the chunks at the one with index first, stored at seq (0:
// the first of the upload).
func (o *objectReader) open(first int64, seq uint64) error {
	// Removed by the server soon after the read ends (the default leaves
	// every download's consumer on the stream for 5 minutes); a reader
	// idle past it is recreated where it was, as ordered consumers are.
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{chunkSubject(o.s.bucket, o.info.NUID)}, InactiveThreshold: chunkWait}
	if seq > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, seq
	}
	cons, err := o.s.stream.OrderedConsumer(o.ctx, cfg)
	if err != nil {
		return o.s.wrap("get", o.info.Name, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(8)) // 1 MiB ahead
	if err != nil {
		return o.s.wrap("get", o.info.Name, err)
	}
	o.started, o.it, o.next = true, it, first
	return nil
}

func (o *objectReader) Read(p []byte) (int, error) {
	size := int64(o.info.Size)
	if !o.started {
		if size == 0 {
			return 0, io.EOF
		}
		if err := o.open(0, 0); err != nil {
			return 0, err
		}
		o.digest = sha256.New()
	}
	for len(o.buf) == 0 {
		if o.pos >= size {
			return 0, o.end()
		}
		msg, err := o.nextChunk()
		if err != nil {
			return 0, err
		}
		data := msg.Data()
		want := int64(len(data))
		if o.index != nil {
			want = chunkSize
			if o.next == int64(o.info.Chunks)-1 {
				want = size - o.next*chunkSize
			}
		}
		// Where the chunk ends: past the object, or short of it with no
		// chunk to come (meta and chunks disagree), is no object.
		upTo := o.next*chunkSize + int64(len(data))
		if o.index == nil {
			upTo = o.pos + int64(len(data))
		}
		meta, err := msg.Metadata()
		if err != nil {
			return 0, o.s.wrap("get", o.info.Name, err)
		}
		if int64(len(data)) != want || upTo > size || upTo < size && meta.NumPending == 0 {
			return 0, fmt.Errorf("%w: %s: chunk %d of %d bytes ends at byte %d of %d (%d chunks to come)",
				ErrSizeMismatch, o.info.Name, o.next, len(data), upTo, size, meta.NumPending)
		}
		o.next++
		if o.skipChunks > 0 {
			o.skipChunks--
			continue
		}
		if o.digest != nil {
			o.digest.Write(data)
		}
		o.buf, o.skipBytes = data[o.skipBytes:], 0
	}
	n := copy(p, o.buf)
	o.buf = o.buf[n:]
	o.pos += int64(n)
	return n, nil
}

// chunkWait bounds the wait for the next chunk: a stream that delivers
// nothing that long is unavailable (the caller resumes later), not slow.
const chunkWait = 30 * time.Second

func (o *objectReader) nextChunk() (jetstream.Msg, error) {
	ctx, cancel := context.WithTimeout(o.ctx, chunkWait)
	defer cancel()
	msg, err := o.it.Next(jetstream.NextContext(ctx))
	if err != nil {
		return nil, o.s.wrap("get", o.info.Name, err)
	}
	return msg, nil
}

// end is what a read past the last byte returns: io.EOF, or
// ErrDigestMismatch when the object was read whole and its bytes are not
// those its meta describes.
func (o *objectReader) end() error {
	if o.digest != nil && o.info.Digest != "" && jetstream.GetObjectDigestValue(o.digest) != o.info.Digest {
		return fmt.Errorf("%w: %s: its chunks do not match the digest of its meta", ErrDigestMismatch, o.info.Name)
	}
	return io.EOF
}

// Seek positions the reader at offset from the start, before the first
// Read only. It fails with errNotSeekable for an object without a chunk
// index: the reader is then unchanged and reads from the first byte.
func (o *objectReader) Seek(offset int64, whence int) (int64, error) {
	size := int64(o.info.Size)
	switch {
	case whence != io.SeekStart:
		return 0, fmt.Errorf("storage: seek %s: only from the start", o.info.Name)
	case o.started:
		return 0, fmt.Errorf("storage: seek %s: only before the first read", o.info.Name)
	case offset < 0 || offset > size:
		return 0, fmt.Errorf("storage: seek %s: offset %d outside its %d bytes", o.info.Name, offset, size)
	case offset == 0:
		return 0, nil
	}
	if offset == size {
		o.started, o.pos = true, size
		return offset, nil
	}
	if o.index == nil {
		return 0, fmt.Errorf("storage: seek %s: %w", o.info.Name, errNotSeekable)
	}
	k := offset / chunkSize
	j := k / chunkStride
	if err := o.open(j*chunkStride, o.index[j]); err != nil {
		return 0, err
	}
	o.skipChunks, o.skipBytes = k-o.next, offset%chunkSize
	o.pos = offset
	return offset, nil
}

func (o *objectReader) Close() error {
	if o.it != nil {
		o.it.Stop()
	}
	return nil
}

// chunkSubject is the subject of the chunks of the upload nuid (ADR-20).
func chunkSubject(bucket, nuid string) string {
	return "$O." + bucket + ".C." + nuid
}
