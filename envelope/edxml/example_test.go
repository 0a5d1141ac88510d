package edxml_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"time"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/envelope/edxml"
)

// A status message from another agency becomes a status envelope.
func Example() {
	const status = `<?xml version="1.0" encoding="UTF-8"?>
<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">
  <edXML:edXMLEnvelope xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">
    <edXML:edXMLHeader>
      <edXML:MessageHeader>
        <edXML:From><edXML:OrganId>000.00.00.H41</edXML:OrganId></edXML:From>
        <edXML:ResponseFor>
          <edXML:OrganId>000.00.00.G22</edXML:OrganId>
          <edXML:DocumentId>9fbfbad2-f1f8-4256-a2eb-50fb1061cddb</edXML:DocumentId>
        </edXML:ResponseFor>
        <edXML:StaffInfo><edXML:Staff>Lê Thị Hoa</edXML:Staff></edXML:StaffInfo>
        <edXML:StatusCode>03</edXML:StatusCode>
        <edXML:Description>Đã tiếp nhận văn bản đến</edXML:Description>
        <edXML:Timestamp>2024/03/16 08:00:00</edXML:Timestamp>
      </edXML:MessageHeader>
    </edXML:edXMLHeader>
  </edXML:edXMLEnvelope>
</edXML>`
	m, err := edxml.Parse(strings.NewReader(status))
	if err != nil {
		log.Fatal(err)
	}
	e, _, err := m.ToEnvelope(edxml.ImportOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(e.Kind, e.From, "->", e.To[0])
	fmt.Println(e.Status.State, "of", e.Status.Of)
	fmt.Println(e.Status.Note, "/", e.Status.Staff.Name)
	fmt.Println(e.Created.Format(time.RFC3339)) // 08:00 in Hanoi
	// Output:
	// status 000.00.00.H41 -> 000.00.00.G22
	// accepted of 9fbfbad2-f1f8-4256-a2eb-50fb1061cddb
	// Đã tiếp nhận văn bản đến / Lê Thị Hoa
	// 2024-03-16T01:00:00Z
}

// Import a document with its attachments and the original file, then
// write it back as edXML.
func ExampleImport() {
	f, err := os.Open("testdata/doc_new.edxml")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		log.Fatal(err)
	}
	m, err := edxml.ParseReaderAt(f, st.Size())
	if err != nil {
		log.Fatal(err) // a *edxml.ParseError: element path and line
	}

	// A stand-in for the attachment store: hash while streaming.
	stored := map[string][]byte{}
	put := func(name, mediaType string, r io.Reader) (envelope.Attachment, error) {
		h := sha256.New()
		var buf bytes.Buffer
		n, err := io.Copy(io.MultiWriter(h, &buf), r)
		if err != nil {
			return envelope.Attachment{}, err
		}
		sum := hex.EncodeToString(h.Sum(nil))
		stored["sha256/"+sum] = buf.Bytes()
		return envelope.Attachment{Size: n, SHA256: sum, Key: "sha256/" + sum}, nil
	}
	e, err := edxml.Import(m, edxml.ImportOptions{KeepOriginal: true}, put)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(e.Kind, e.Document.CodeNumber+"/"+e.Document.CodeNotation, e.Document.PromulgationDate)
	for _, a := range e.Attachments {
		fmt.Println(a.Name, a.MediaType, a.Size > 0)
	}
	fmt.Println(e.Extra[edxml.KeyOtherPageAmount], "pages")

	open := func(a envelope.Attachment) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(stored[a.Key])), nil
	}
	var out bytes.Buffer
	if err := edxml.Write(&out, e, open); err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.Count(out.String(), "<edXML:Attachment>"), "attachments written")
	// Output:
	// document 1234/VPCP-KGVX 2024-03-15
	// 1234-VPCP-KGVX.pdf application/pdf true
	// Phụ lục kèm theo.txt text/plain true
	// original.edxml application/xml true
	// 3 pages
	// 2 attachments written
}
