package broker_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
)

// An agency's existing RSA certificate, which names no docaxis agency
// code, works once the operator binds it to the agency in the directory.
func TestImportedRSACertificateWithoutAgencyURI(t *testing.T) {
	bus := threeAgencies(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(20260001),
		Subject:      pkix.Name{CommonName: "UBND TỈNH LÀO CAI", Organization: []string{"Ban Cơ yếu Chính phủ (thử)"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, bus.CA.Cert, key.Public(), bus.CA.Key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	const laoCai = "000.00.00.H02"
	id, err := signing.NewIdentity(laoCai, key, []*x509.Certificate{leaf, bus.CA.Cert})
	if err != nil {
		t.Fatal(err)
	}
	bus.Register(id, false)
	res, err := bus.Client(laoCai).Send(ctxT(t), envelope.New(laoCai, []string{ngheAn}, "Ký bằng chứng thư RSA có sẵn"))
	if err != nil {
		t.Fatal(err)
	}
	outs := receiveAll(t, bus.Client(ngheAn), ngheAn)
	if len(outs) != 1 || !outs[0].Verified || outs[0].ID != res.ID {
		t.Fatalf("outcomes %+v", outs)
	}
	waitState(t, bus.Client(laoCai), res.ID, ngheAn, envelope.StateDelivered)
}
