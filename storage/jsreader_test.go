package storage

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// FuzzChunkIndex: the chunk index is read from an object's meta, which any
// client of the object store's stream could have written. Whatever it
// holds, it is either refused (nil) or one stream sequence per
// chunkStride chunks, in increasing order.
func FuzzChunkIndex(f *testing.F) {
	f.Add("1,70,140", uint32(150))
	f.Add("5", uint32(1))
	f.Add("", uint32(0))
	f.Add("3,2", uint32(100))
	f.Add("0", uint32(1))
	f.Add("18446744073709551615", uint32(64))
	f.Add("1,,2", uint32(130))
	f.Fuzz(func(t *testing.T, v string, chunks uint32) {
		info := &jetstream.ObjectInfo{Chunks: chunks, ObjectMeta: jetstream.ObjectMeta{
			Metadata: map[string]string{chunkIndexKey: v},
			Opts:     &jetstream.ObjectMetaOptions{ChunkSize: chunkSize}}}
		seqs := chunkIndex(info)
		if seqs == nil {
			return
		}
		if want := (int(chunks) + chunkStride - 1) / chunkStride; len(seqs) != want {
			t.Fatalf("%q for %d chunks: %d entries, want %d", v, chunks, len(seqs), want)
		}
		for i, s := range seqs {
			if s == 0 || i > 0 && s <= seqs[i-1] {
				t.Fatalf("%q: entry %d is %d after %v", v, i, s, seqs[:i])
			}
		}
		if got := encodeChunkIndex(seqs); chunkIndex(&jetstream.ObjectInfo{Chunks: chunks, ObjectMeta: jetstream.ObjectMeta{
			Metadata: map[string]string{chunkIndexKey: got}, Opts: info.Opts}}) == nil {
			t.Fatalf("%q read as %v, written back as %q, is refused", v, seqs, got)
		}
	})
}

// TestChunkIndexTable: what the index accepts.
func TestChunkIndexTable(t *testing.T) {
	for _, tc := range []struct {
		v      string
		chunks uint32
		size   int // ChunkSize of the meta
		ok     bool
	}{
		{"7", 1, chunkSize, true},
		{"7,80", 65, chunkSize, true},
		{"7", 65, chunkSize, false},       // an entry short
		{"7,80,90", 65, chunkSize, false}, // one too many
		{"80,7", 65, chunkSize, false},    // not increasing
		{"7,x", 65, chunkSize, false},
		{"7", 1, 64 << 10, false}, // chunks of another size
		{"", 1, chunkSize, false},
	} {
		info := &jetstream.ObjectInfo{Chunks: tc.chunks, ObjectMeta: jetstream.ObjectMeta{
			Metadata: map[string]string{chunkIndexKey: tc.v}, Opts: &jetstream.ObjectMetaOptions{ChunkSize: uint32(tc.size)}}}
		if got := chunkIndex(info) != nil; got != tc.ok {
			t.Errorf("chunkIndex(%q, %d chunks of %d) accepted = %v, want %v", tc.v, tc.chunks, tc.size, got, tc.ok)
		}
	}
}
