package broker_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/storage"
	"github.com/docaxis/docaxis/storage/miniotest"
	"github.com/docaxis/docaxis/storage/s3"
	"github.com/docaxis/docaxis/storage/storagetest"
	"github.com/minio/minio-go/v7"
)

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Attachments through a real MinIO: streamed in, verified out, a byte
// changed in the bucket caught and reported, storage down refused at send.
func TestAttachmentsThroughS3(t *testing.T) {
	bus := threeAgencies(t)
	mio := miniotest.Start(t)
	ctx := ctxT(t)
	cfg, err := s3.ParseURL(mio.URL("docaxis"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := s3.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	client := func(code string) *broker.Client {
		c, err := broker.Connect(ctx, bus.URL(), broker.WithIdentity(bus.Identity(code)), broker.WithTrust(bus.Trust), broker.WithStore(store))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	const size = 64 << 20
	want := storagetest.StreamSHA256(7, size)
	sender := client(govOffice)
	res, err := sender.Send(ctx, envelope.New(govOffice, []string{ngheAn, sonLa}, "Hồ sơ địa chính"),
		broker.File{Name: "ho-so.bin", Reader: storagetest.Stream(7, size), Size: size})
	if err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{ngheAn, sonLa} {
		dir := t.TempDir()
		outs := receiveAll(t, client(who), who, broker.SaveAttachments(dir))
		if len(outs) != 1 || !outs[0].Verified {
			t.Fatalf("%s: %+v", who, outs)
		}
		if got := fileSHA256(t, filepath.Join(dir, res.ID, "ho-so.bin")); got != want {
			t.Fatalf("%s saved %s, sent %s", who, got, want)
		}
	}

	// A byte changed directly in the bucket, in the blob that holds the
	// bytes of the content address.
	content := []byte("Quyết định số 15 — bản gốc")
	tampered, err := sender.Send(ctx, envelope.New(govOffice, []string{ngheAn}, "Quyết định"),
		broker.File{Name: "qd.txt", Reader: bytes.NewReader(content), Size: int64(len(content))})
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(content)
	bad[0] ^= 1
	sum := sha256.Sum256(content)
	key := storage.Key(hex.EncodeToString(sum[:]))
	addr, err := mio.Client(t).StatObject(ctx, cfg.Bucket, key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	blob := addr.UserMetadata[s3.MetaBlob]
	if !strings.HasPrefix(blob, s3.BlobPrefix) {
		t.Fatalf("%s names no blob: metadata %v", key, addr.UserMetadata)
	}
	if _, err := mio.Client(t).PutObject(ctx, cfg.Bucket, blob, bytes.NewReader(bad), int64(len(bad)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	outs := receiveAll(t, client(ngheAn), ngheAn, broker.SaveAttachments(dir))
	if len(outs) != 1 || outs[0].Verified || !outs[0].Quarantined || !strings.Contains(outs[0].Error, "qd.txt") {
		t.Fatalf("tampered attachment: %+v", outs)
	}
	if _, err := os.Stat(filepath.Join(dir, tampered.ID, "qd.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a tampered attachment was saved: %v", err)
	}
	tr := waitState(t, sender, tampered.ID, ngheAn, envelope.StateInvalid)
	if !strings.Contains(tr.Reason, "qd.txt") || !strings.Contains(tr.Reason, "SHA-256") {
		t.Fatalf("reason %q", tr.Reason)
	}

	// Storage down: send fails clearly and publishes nothing.
	info, _ := sender.JetStream().Stream(ctx, record.Stream)
	before := info.CachedInfo().State.Msgs
	mio.Stop()
	short, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err = sender.Send(short, envelope.New(govOffice, []string{ngheAn}, "Khi kho tệp ngừng"),
		broker.File{Name: "x.txt", Reader: strings.NewReader("x"), Size: 1})
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("send with storage down: %v", err)
	}
	info, _ = sender.JetStream().Stream(ctx, record.Stream)
	if after := info.CachedInfo().State.Msgs; after != before {
		t.Fatalf("%d messages published while storage was down", after-before)
	}
}
