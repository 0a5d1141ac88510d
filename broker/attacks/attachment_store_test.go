package attacks_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/storage"
	"github.com/nats-io/nuid"
)

// Only the bus writes the embedded attachment store: a reader trusts an
// object's meta (its size, digest and the chunk index a resumed download
// seeks by) and its chunks. With its own credentials H99 may not write
// either, not even for an attachment it uploaded itself; the meta stays
// as the bus wrote it.
func TestPermissionsAttachmentStoreNotWritable(t *testing.T) {
	a := newArena(t)
	ctx := ctxT(t)
	content := strings.Repeat("Phụ lục của H99. ", 20000) // several chunks
	if _, err := a.client(attacker).PutAttachment(ctx, broker.File{Name: "phu-luc.txt", Reader: strings.NewReader(content), Size: int64(len(content))}); err != nil {
		t.Fatal(err)
	}
	obs, err := a.admin.JetStream().ObjectStore(ctx, storage.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	objects, err := obs.List(ctx)
	if err != nil || len(objects) != 1 {
		t.Fatalf("objects in %s: %d, %v", storage.DefaultBucket, len(objects), err)
	}
	before := objects[0]
	forged := *before
	forged.Size, forged.Chunks = 1, 1
	forged.Metadata = map[string]string{"axis-chunk-index": "1"}
	meta, err := json.Marshal(forged)
	if err != nil {
		t.Fatal(err)
	}
	name := base64.URLEncoding.EncodeToString([]byte(before.Name))
	for _, at := range []struct{ name, subject string }{
		{"its meta, with a forged chunk index", "$O." + storage.DefaultBucket + ".M." + name},
		{"a chunk of its upload", "$O." + storage.DefaultBucket + ".C." + before.NUID},
		{"a chunk of a new upload", "$O." + storage.DefaultBucket + ".C." + nuid.Next()},
	} {
		t.Run(at.name, func(t *testing.T) { a.permRefused(t, at.subject, meta) })
	}
	after, err := obs.GetInfo(ctx, before.Name)
	if err != nil {
		t.Fatal(err)
	}
	if after.Size != before.Size || after.Chunks != before.Chunks || after.Digest != before.Digest ||
		after.Metadata["axis-chunk-index"] != before.Metadata["axis-chunk-index"] || before.Metadata["axis-chunk-index"] == "" {
		t.Fatalf("meta after the attacks %+v, before %+v", after, before)
	}
}
