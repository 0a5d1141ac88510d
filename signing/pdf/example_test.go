package pdf_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"time"

	"github.com/docaxis/docaxis/signing"
	"github.com/docaxis/docaxis/signing/pdf"
)

// A ministry signs a decision, a province countersigns it, and the
// receiver verifies both against the bus's trust.
func Example() {
	ca, err := signing.NewCA("docaxis development CA", 24*time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	ministry, err := ca.Issue("000.00.00.G22", "Bộ Nội vụ", signing.IssueOptions{KeyType: signing.KeyECDSA})
	if err != nil {
		log.Fatal(err)
	}
	province, err := ca.Issue("000.00.01.H29", "UBND tỉnh Quảng Ninh", signing.IssueOptions{KeyType: signing.KeyRSA})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	doc := pdf.Minimal("Quyet dinh so 1/QD-BNV")
	var once, twice bytes.Buffer
	if err := pdf.Sign(ctx, bytes.NewReader(doc), int64(len(doc)), &once, ministry, pdf.SignOptions{Reason: "Ban hành"}); err != nil {
		log.Fatal(err)
	}
	if err := pdf.Sign(ctx, bytes.NewReader(once.Bytes()), int64(once.Len()), &twice, province, pdf.SignOptions{Reason: "Đồng ý"}); err != nil {
		log.Fatal(err)
	}

	rep, err := pdf.Verify(bytes.NewReader(twice.Bytes()), int64(twice.Len()), signing.NewTrust(ca.Cert))
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range rep.Signatures {
		fmt.Printf("%d %s %q intact=%v trusted=%v whole=%v\n", s.Number, s.Agency, s.Reason, s.Intact, s.Trusted, s.CoversWholeFile)
	}
	fmt.Println("ok:", rep.OK())

	// Output:
	// 1 000.00.00.G22 "Ban hành" intact=true trusted=true whole=false
	// 2 000.00.01.H29 "Đồng ý" intact=true trusted=true whole=true
	// ok: true
}
