package audit_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/audit"
	"github.com/docaxis/docaxis/signing"
)

// Each link holds the hash of the one before: recomputing the chain from
// the records shows where it breaks.
func ExampleNewLink() {
	stored := time.Date(2025, 3, 1, 1, 2, 3, 0, time.UTC)
	first := audit.NewLink(audit.GenesisHash, 1, stored, "axis.doc.000_00_00_H41.000_00_00_G22", []byte("signed envelope 1"))
	second := audit.NewLink(first.Hash, 2, stored.Add(time.Second), "axis.status.000_00_00_G22.000_00_00_H41", []byte("signed receipt"))
	fmt.Println(first.Valid(), second.Prev == first.Hash)

	second.Digest = first.Digest // a record swapped in
	fmt.Println(second.Valid())
	fmt.Printf("%q\n", first.HashInput()[:40])
	// Output:
	// true true
	// false
	// "docaxis-audit-link/1\n1\n2025-03-01T01:02:"
}

// The bus's audit key signs checkpoints; anyone holding the CA checks them.
func ExampleVerifyCheckpoint() {
	ca, err := signing.NewCA("example CA", 24*time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	key, err := audit.NewKey(ca, time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	head := audit.NewLink(audit.GenesisHash, 1, time.Now(), "axis.doc.000_00_00_H41.000_00_00_G22", []byte("record"))
	cp, err := key.Sign(audit.Checkpoint{Seq: head.Seq, Head: head.Hash, Time: time.Now(), Reason: "interval"})
	if err != nil {
		log.Fatal(err)
	}
	got, err := audit.VerifyCheckpoint(cp.Raw, []*x509.Certificate{ca.Cert})
	fmt.Println(err, got.Seq, got.Head == head.Hash, audit.IsAuditCertificate(got.Chain[0]))

	other, _ := signing.NewCA("another CA", 24*time.Hour)
	_, err = audit.VerifyCheckpoint(cp.Raw, []*x509.Certificate{other.Cert})
	fmt.Println(err != nil)
	// Output:
	// <nil> 1 true true
	// true
}

func ExampleParseTime() {
	now := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{"2025-03-01", "2025-03-01T08:00:00+07:00", "36h"} {
		t, _ := audit.ParseTime(s, now)
		fmt.Println(t.UTC().Format(time.RFC3339))
	}
	// Output:
	// 2025-03-01T00:00:00Z
	// 2025-03-01T01:00:00Z
	// 2025-03-09T00:00:00Z
}

// Replay one agency's traffic of the last day, re-verified, then carry it
// away as a bundle and verify that offline.
func ExampleReader_Replay() {
	ctx := context.Background()
	ks, _ := signing.OpenKeystore(".docaxis")
	ca, err := ks.CACert()
	if err != nil {
		log.Fatal(err)
	}
	c, err := broker.Connect(ctx, "nats://127.0.0.1:4222", broker.WithTrust(signing.NewTrust(ca)))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	r, err := audit.NewReader(c.JetStream(), audit.ReaderConfig{Verifier: c.Verifier(), Store: c.Store()})
	if err != nil {
		log.Fatal(err)
	}
	q := audit.Query{Since: time.Now().Add(-24 * time.Hour), Agency: "000.00.00.H41"}
	_, err = r.Replay(ctx, q, func(rec *audit.Record) error {
		fmt.Println(rec.Seq, rec.Type, rec.From, "->", rec.To, rec.ID, rec.Verified, rec.Reason)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	f, _ := os.Create("evidence.zip")
	if _, err := r.Export(ctx, audit.ExportOptions{Query: q, Attachments: true}, f); err != nil {
		log.Fatal(err)
	}
	f.Close()
	rep, err := audit.VerifyBundleFile(ctx, "evidence.zip", audit.VerifyOptions{})
	if err != nil {
		log.Fatal(err) // names the first bad record
	}
	fmt.Println(rep.Records, rep.Covered)
}

// The chainer runs inside `docaxis serve`.
func ExampleStartChainer() {
	ctx := context.Background()
	ks, _ := signing.OpenKeystore(".docaxis")
	ca, err := ks.CA()
	if err != nil {
		log.Fatal(err)
	}
	key, err := audit.OpenKey(ks.Dir+"/audit", ca)
	if err != nil {
		log.Fatal(err)
	}
	c, err := broker.Connect(ctx, "nats://127.0.0.1:4222")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ch, err := audit.StartChainer(ctx, c.JetStream(), audit.ChainerConfig{Key: key, Interval: time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	// ... at shutdown, a last checkpoint seals the record.
	cp, err := ch.Stop(ctx)
	if err == nil && cp != nil {
		fmt.Println("sealed through seq", cp.Seq)
	}
}
