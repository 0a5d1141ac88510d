package audit_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/audit"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
)

// A bundle carries the bus's revocation lists: offline, an envelope signed
// after its certificate was revoked is invalid, as it was for the bus, and
// one signed before still verifies.
func TestBundleCarriesRevocations(t *testing.T) {
	ab := startAuditBus(t)
	ctx := ctxT(t)
	ab.send(govOffice, ngheAn) // before the revocation
	at := time.Now().UTC().Truncate(time.Second).Add(time.Second)
	time.Sleep(time.Until(at))
	crl, err := ab.CA.NewCRL([]signing.Revocation{{Serial: ab.Identity(govOffice).Certificate().SerialNumber, At: at}}, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c := ab.Client()
	if err := c.PublishCRL(ctx, crl); err != nil {
		t.Fatal(err)
	}
	late := envelope.New(govOffice, []string{ngheAn}, "Ký sau khi thu hồi")
	raw, err := ab.Identity(govOffice).Seal(late)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.JetStream().Publish(ctx, record.DocSubject(ngheAn, govOffice), raw); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	m, err := ab.reader().Export(ctx, audit.ExportOptions{}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	crls := 0
	for _, mc := range m.Certificates {
		if mc.Role == "crl" {
			crls++
		}
	}
	if crls != 1 {
		t.Fatalf("%d revocation lists in the bundle, want 1", crls)
	}
	rep, err := verifyBytes(buf.Bytes(), audit.VerifyOptions{})
	if err != nil {
		t.Fatalf("verify: %v (problems %v)", err, rep)
	}
	if rep.Verified != 1 || rep.RecordedInvalid != 1 {
		t.Fatalf("offline: %d verified, %d recorded invalid, want 1 and 1", rep.Verified, rep.RecordedInvalid)
	}
}
