package record_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/storage/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

// A "no" from the references a replica holds is read again through the
// leader: a replica behind it (here, a bucket with none of the keys)
// must not refuse an agency bytes it uploaded.
func TestHoldsConfirmsANoWithTheLeader(t *testing.T) {
	url, _ := natstest.Start(t)
	nc, js := natstest.Connect(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	refs, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: record.FileRefsBucket})
	if err != nil {
		t.Fatal(err)
	}
	behind, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "BEHIND"})
	if err != nil {
		t.Fatal(err)
	}
	const sum = "3f1c9e0d5b2a47a8c6e1f0d9b8a7c6e5d4c3b2a1908f7e6d5c4b3a2918f7e6d5"
	const uploader, system, stranger = "000.00.00.G22", "dms-1", "000.00.00.H41"
	if _, err := refs.Put(ctx, record.UploadRefKey(sum, uploader), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := refs.Put(ctx, record.FileRefKey(sum, record.SystemActor(system)), []byte("x")); err != nil {
		t.Fatal(err)
	}
	leader := broker.LeaderCheck(nc, record.FileRefsBucket, 5*time.Second)
	failing := func(context.Context, string) (bool, error) { return false, errors.New("leader unreachable") }
	for _, tc := range []struct {
		name    string
		refs    jetstream.KeyValue
		confirm record.KeyCheck
		agency  string
		system  string
		want    bool
		wantErr bool
	}{
		{"held, read from a replica up to date", refs, failing, uploader, "", true, false},
		{"held, the replica behind", behind, leader, uploader, "", true, false},
		{"held by its system, the replica behind", behind, leader, stranger, system, true, false},
		{"not held", behind, leader, stranger, "", false, false},
		{"not held on the replica, no leader to ask", behind, failing, uploader, "", false, true},
		{"not confirmed", behind, nil, uploader, "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := record.Holds(ctx, tc.refs, tc.confirm, sum, tc.agency, tc.system)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("Holds = %v, %v; want %v (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
