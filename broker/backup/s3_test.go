package backup_test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docaxis/docaxis/broker/backup"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/storage"
	"github.com/docaxis/docaxis/storage/miniotest"
	"github.com/docaxis/docaxis/storage/s3"
	"github.com/nats-io/nats.go"
)

// TestBackupS3Attachments: with an S3 store, its objects go into the
// backup, checked against their content address, and restore puts them
// into the store it is given.
func TestBackupS3Attachments(t *testing.T) {
	mi := miniotest.Start(t)
	ctx := ctxT(t)
	open := func(bucket string) storage.Store {
		cfg, err := s3.ParseURL(mi.URL(bucket))
		if err != nil {
			t.Fatal(err)
		}
		st, err := s3.New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	src := open("axis-src")
	bodies := map[string]string{}
	for _, body := range []string{"công văn số 1", strings.Repeat("phụ lục ", 100000)} {
		obj, err := src.Put(ctx, strings.NewReader(body), storage.PutOptions{Size: int64(len(body))})
		if err != nil {
			t.Fatal(err)
		}
		bodies[obj.Key] = body
	}

	b := bustest.Start(t, bustest.WithAuth())
	nc, err := nats.Connect(b.URL(), b.AdminOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	path := filepath.Join(t.TempDir(), "bus.tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := backup.Write(ctx, f, backup.Source{Conn: nc, Home: filepath.Join(b.Dir, "home"), Store: src})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range m.Entries {
		if _, ok := bodies[strings.TrimPrefix(e.Name, "objects/")]; ok {
			n++
		}
	}
	if n != len(bodies) {
		t.Fatalf("backup holds %d of the %d S3 objects: %+v", n, len(bodies), m.Entries)
	}
	b.Stop()

	dst := open("axis-dst")
	if _, err := backup.Restore(ctx, path, backup.Target{Home: filepath.Join(t.TempDir(), "home"), Store: dst}); err != nil {
		t.Fatal(err)
	}
	for key, body := range bodies {
		rc, _, err := dst.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(got) != body {
			t.Errorf("%s restored as %d bytes, %v", key, len(got), err)
		}
	}
}
