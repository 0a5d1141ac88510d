package filesvc_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/filesvc"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/storage"
	"github.com/docaxis/docaxis/storage/miniotest"
	"github.com/docaxis/docaxis/storage/s3"
	"github.com/nats-io/nats.go"
)

// The attachment service in front of a real MinIO, on a bus with agency
// credentials. With the S3 endpoint down, an agency's upload fails as
// "unavailable"; the answer must not tell the agency where the bus keeps
// its attachments (the endpoint's address, the bucket, the blob names):
// that is for the bus's log.
func TestS3FailureNotToldToAgencies(t *testing.T) {
	const agency = "000.00.00.H99"
	bus := bustest.Start(t, bustest.WithAuth(), bustest.WithoutFiles())
	bus.AddAgency(agency, "Cơ quan thử tấn công")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mio := miniotest.Start(t)
	cfg, err := s3.ParseURL(mio.URL("docaxis-private"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxRetries = 1
	backing, err := s3.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := nats.Connect(bus.URL(), bus.AdminOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	refs, err := bus.Service.Client.JetStream().KeyValue(ctx, record.FileRefsBucket)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := filesvc.Serve(ctx, admin, backing, refs, filesvc.Config{InboxPrefix: "_INBOX_", Logger: bustest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()

	nc, _ := bus.AgencyConnect(t, agency)
	store := filesvc.NewStore(nc, agency)
	if _, err := store.Put(ctx, strings.NewReader("trước khi S3 ngừng"), storage.PutOptions{Size: -1}); err != nil {
		t.Fatal(err)
	}
	mio.Stop()
	_, err = store.Put(ctx, strings.NewReader("khi S3 ngừng"), storage.PutOptions{Size: -1})
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("put with S3 down: %v, want unavailable", err)
	}
	host := strings.TrimPrefix(strings.TrimPrefix(cfg.Endpoint, "http://"), "https://")
	for _, secret := range []string{host, "docaxis-private", s3.BlobPrefix, cfg.AccessKey} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("the agency was told %q: %v", secret, err)
		}
	}
}
