package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

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
	parts := strings.Split(v, ",")
	if want := (int(info.Chunks) + chunkStride - 1) / chunkStride; len(parts) != want {
		return nil
	}
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

// objectReader reads one object: from its first byte through the object
// store (which checks the object's digest at the end), or, after Seek,
// from the chunk index (the bytes read are checked by whoever holds the
// object's SHA-256, as a resumed download's client does). Neither starts
// before the first Read.
type objectReader struct {
	s    *jsStore
	ctx  context.Context
	info *jetstream.ObjectInfo

	whole io.ReadCloser // read from the first byte

	// After Seek.
	seeked     bool
	it         jetstream.MessagesContext
	next       int64 // index of the next chunk to come
	skipChunks int64
	skipBytes  int64
	pos        int64
	buf        []byte
}

func (o *objectReader) Read(p []byte) (int, error) {
	if !o.seeked {
		if o.whole == nil {
			res, err := o.s.obs.Get(o.ctx, o.info.Name)
			if err != nil {
				return 0, o.s.wrap("get", o.info.Name, err)
			}
			o.whole = res
		}
		return o.whole.Read(p)
	}
	size := int64(o.info.Size)
	for len(o.buf) == 0 {
		if o.pos >= size {
			return 0, io.EOF
		}
		msg, err := o.it.Next(jetstream.NextContext(o.ctx))
		if err != nil {
			return 0, o.s.wrap("get", o.info.Name, err)
		}
		data := msg.Data()
		want := int64(chunkSize)
		if o.next == int64(o.info.Chunks)-1 {
			want = size - o.next*chunkSize
		}
		if int64(len(data)) != want {
			return 0, fmt.Errorf("%w: %s: chunk %d has %d bytes, want %d", ErrSizeMismatch, o.info.Name, o.next, len(data), want)
		}
		o.next++
		if o.skipChunks > 0 {
			o.skipChunks--
			continue
		}
		o.buf, o.skipBytes = data[o.skipBytes:], 0
	}
	n := copy(p, o.buf)
	o.buf = o.buf[n:]
	o.pos += int64(n)
	return n, nil
}

// Seek positions the reader at offset from the start, before the first
// Read only. It fails with errNotSeekable for an object without a chunk
// index: the reader is then unchanged and reads from the first byte.
func (o *objectReader) Seek(offset int64, whence int) (int64, error) {
	size := int64(o.info.Size)
	switch {
	case whence != io.SeekStart:
		return 0, fmt.Errorf("storage: seek %s: only from the start", o.info.Name)
	case o.whole != nil || o.seeked:
		return 0, fmt.Errorf("storage: seek %s: only before the first read", o.info.Name)
	case offset < 0 || offset > size:
		return 0, fmt.Errorf("storage: seek %s: offset %d outside its %d bytes", o.info.Name, offset, size)
	case offset == 0:
		return 0, nil
	}
	if offset == size {
		o.seeked, o.pos = true, size
		return offset, nil
	}
	index := chunkIndex(o.info)
	if index == nil {
		return 0, fmt.Errorf("storage: seek %s: %w", o.info.Name, errNotSeekable)
	}
	k := offset / chunkSize
	j := k / chunkStride
	cons, err := o.s.stream.OrderedConsumer(o.ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{chunkSubject(o.s.bucket, o.info.NUID)},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    index[j],
	})
	if err != nil {
		return 0, o.s.wrap("seek", o.info.Name, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(8)) // 1 MiB ahead
	if err != nil {
		return 0, o.s.wrap("seek", o.info.Name, err)
	}
	o.seeked, o.it = true, it
	o.next = j * chunkStride
	o.skipChunks, o.skipBytes = k-o.next, offset%chunkSize
	o.pos = offset
	return offset, nil
}

func (o *objectReader) Close() error {
	if o.it != nil {
		o.it.Stop()
	}
	if o.whole != nil {
		return o.whole.Close()
	}
	return nil
}

// chunkSubject is the subject of the chunks of the upload nuid (ADR-20).
func chunkSubject(bucket, nuid string) string {
	return "$O." + bucket + ".C." + nuid
}
