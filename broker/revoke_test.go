package broker_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go/jetstream"
)

// On a bus on its own, `agency revoke` (RevokeAgency) works as before: the
// agency can no longer send, and the CRL is kept under its CA's key.
func TestRevokeAgency(t *testing.T) {
	bus := threeAgencies(t)
	ctx := ctxT(t)
	admin := bus.Client()
	leaf, err := admin.RevokeAgency(ctx, bus.Keystore, govOffice, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.Equal(bus.Identity(govOffice).Certificate()) {
		t.Fatal("revoked another certificate")
	}
	if _, err := bus.Client(govOffice).Send(ctx, envelope.New(govOffice, []string{ngheAn}, "Sau khi thu hồi")); !errors.Is(err, signing.ErrRevoked) {
		t.Fatalf("send after revocation: %v", err)
	}
	if _, err := bus.Client(ngheAn).Send(ctx, envelope.New(ngheAn, []string{govOffice}, "Không bị thu hồi")); err != nil {
		t.Fatalf("another agency: %v", err)
	}
	kv, err := admin.JetStream().KeyValue(ctx, record.DirectoryBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, broker.CRLKey(bus.CA.Cert)); err != nil {
		t.Fatalf("CRL under %s: %v", broker.CRLKey(bus.CA.Cert), err)
	}
	// A second revocation keeps the first in the new list.
	if _, err := admin.RevokeAgency(ctx, bus.Keystore, ngheAn, time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, code := range []string{govOffice, ngheAn} {
		if _, ok := admin.Trust().RevocationOf(bus.Identity(code).Certificate()); !ok {
			t.Errorf("%s no longer revoked", code)
		}
	}
	// An older CRL is refused: it would bring a revoked certificate back.
	old, err := bus.CA.NewCRL(nil, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.PublishCRL(ctx, old); !errors.Is(err, signing.ErrStaleCRL) {
		t.Fatalf("stale CRL: %v", err)
	}
	// A certificate another CA issued cannot be revoked by this CA's CRL.
	other, err := signing.NewCA("another CA", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	imported, err := other.Issue(sonLa, "Sơn La", signing.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bus.Trust.AddRoot(other.Cert)
	bus.Register(imported, false)
	if _, err := admin.RevokeAgency(ctx, bus.Keystore, sonLa, time.Now()); !errors.Is(err, signing.ErrNotIssuedHere) {
		t.Fatalf("revoking a certificate of another CA: %v", err)
	}
	if _, err := admin.RevokeAgency(ctx, bus.Keystore, "000.00.00.H99", time.Now()); !errors.Is(err, broker.ErrUnknownAgency) {
		t.Fatalf("revoking an unknown agency: %v", err)
	}
}

// A CRL kept under the key layout of older versions (the hash of the CA's
// name) is moved under its CA's key at start, and still applies.
func TestMigrateCRLs(t *testing.T) {
	bus := bustest.Start(t)
	bus.AddAgency(govOffice, "Văn phòng Chính phủ")
	ctx := ctxT(t)
	admin := bus.Client()
	crl, err := bus.CA.NewCRL([]signing.Revocation{{Serial: bus.Identity(govOffice).Certificate().SerialNumber, At: time.Now().Add(-time.Minute)}}, 7, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := admin.JetStream().KeyValue(ctx, record.DirectoryBucket)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(bus.CA.Cert.RawSubject)
	legacy := broker.CRLPrefix + hex.EncodeToString(sum[:])
	if _, err := kv.Put(ctx, legacy, crl); err != nil {
		t.Fatal(err)
	}
	n, err := admin.MigrateCRLs(ctx)
	if err != nil || n != 1 {
		t.Fatalf("MigrateCRLs = %d, %v", n, err)
	}
	if _, err := kv.Get(ctx, legacy); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("legacy key still there: %v", err)
	}
	e, err := kv.Get(ctx, broker.CRLKey(bus.CA.Cert))
	if err != nil || string(e.Value()) != string(crl) {
		t.Fatalf("CRL under its CA's key: %v", err)
	}
	if n, err := admin.MigrateCRLs(ctx); err != nil || n != 0 {
		t.Fatalf("second MigrateCRLs = %d, %v", n, err)
	}
	if _, ok := admin.Trust().RevocationOf(bus.Identity(govOffice).Certificate()); !ok {
		t.Fatal("the migrated CRL does not apply")
	}
}
