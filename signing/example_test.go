package signing_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
)

// Example shows a bus's trust in one picture: a CA issues each agency a
// certificate binding its code, the sender seals as its agency, and the
// recipient's Verifier checks signature, chain, dates, revocation and that
// the certificate belongs to the agency named in from.
func Example() {
	ca, err := signing.NewCA("docaxis development CA", 365*24*time.Hour)
	if err != nil {
		fmt.Println(err)
		return
	}
	vpcp, _ := ca.Issue("000.00.00.G22", "Văn phòng Chính phủ", signing.IssueOptions{})
	nghean, _ := ca.Issue("000.00.00.H41", "UBND tỉnh Nghệ An", signing.IssueOptions{KeyType: signing.KeyEd25519})
	fmt.Println(signing.AgencyOf(vpcp.Certificate()))

	raw, err := vpcp.Seal(envelope.New("000.00.00.G22", []string{"000.00.00.H41"}, "Về việc thử nghiệm"))
	if err != nil {
		fmt.Println(err)
		return
	}
	v := &signing.Verifier{Trust: signing.NewTrust(ca.Cert)}
	s, err := v.Verify(raw)
	fmt.Println(s.Envelope.From, s.Envelope.Subject, err)

	// Nghệ An's certificate cannot speak for the Government Office.
	spoof := envelope.New("000.00.00.G22", []string{"000.00.00.H14"}, "Giả mạo")
	forged, _ := envelope.Seal(spoof, nghean.Key, nghean.Chain)
	_, err = v.Verify(forged)
	fmt.Println(errors.Is(err, signing.ErrAgencyMismatch))

	// A verifier that does not trust the CA refuses everything it issued.
	stranger := &signing.Verifier{Trust: signing.NewTrust()}
	_, err = stranger.Verify(raw)
	fmt.Println(errors.Is(err, signing.ErrUntrusted))
	// Output:
	// 000.00.00.G22
	// 000.00.00.G22 Về việc thử nghiệm <nil>
	// true
	// true
}
