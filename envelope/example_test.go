package envelope_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/docaxis/docaxis/envelope"
)

// Example shows the sender's and a recipient's side of one envelope: build,
// seal (validate, encode, sign), and open (verify the exact bytes, decode).
// A real bus also checks the chain with signing.Verifier.
func Example() {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "Văn phòng Chính phủ"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	cert, _ := x509.ParseCertificate(der)

	e := envelope.New("000.00.00.G22", []string{"000.00.00.H41"}, "Về việc triển khai trục liên thông")
	raw, err := envelope.Seal(e, key, []*x509.Certificate{cert})
	if err != nil {
		fmt.Println(err)
		return
	}

	s, err := envelope.Open(raw)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Header.Alg, s.Envelope.From, "->", s.Envelope.To, s.Envelope.Subject)
	fmt.Println("same id:", s.Envelope.ID == e.ID)

	// One changed character of the payload and the signature no longer
	// matches the bytes.
	i := bytes.IndexByte(raw, '.') + 10
	if raw[i] == 'A' {
		raw[i] = 'B'
	} else {
		raw[i] = 'A'
	}
	_, err = envelope.Open(raw)
	fmt.Println(errors.Is(err, envelope.ErrBadSignature))
	// Output:
	// ES256 000.00.00.G22 -> [000.00.00.H41] Về việc triển khai trục liên thông
	// same id: true
	// true
}

// ExampleToken shows the mapping between an agency code and the NATS
// subject token of its mailbox.
func ExampleToken() {
	tok := envelope.Token("000.00.00.H41")
	fmt.Println("axis.doc." + tok + "." + envelope.Token("000.00.00.G22"))
	fmt.Println(envelope.CodeFromToken(tok))
	fmt.Println(envelope.CheckCode("000.00.00.h41"))
	// Output:
	// axis.doc.000_00_00_H41.000_00_00_G22
	// 000.00.00.H41
	// invalid agency code "000.00.00.h41": want the form 000.00.00.G22 (V1V2V3.Z1Z2.Y1Y2.MX1X2)
}

// ExampleParseState shows a clerk's input (a name or an edXML code) checked
// against the status model.
func ExampleParseState() {
	for _, in := range []string{"03", "5", "done"} {
		st, _ := envelope.ParseState(in)
		fmt.Println(in, "=>", st, st.Code())
	}
	fmt.Println(envelope.CheckTransition(envelope.StateDelivered, envelope.StateAccepted))
	err := envelope.CheckTransition(envelope.StateRejected, envelope.StateDone)
	fmt.Println(errors.Is(err, envelope.ErrTransition))
	fmt.Println(err)
	// Output:
	// 03 => accepted 03
	// 5 => processing 05
	// done => done 06
	// <nil>
	// true
	// state change not allowed: rejected -> done (current state is rejected; allowed next: none)
}
