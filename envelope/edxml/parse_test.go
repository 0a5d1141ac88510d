package edxml_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/envelope/edxml"
)

const (
	hdr = "edXML/edXMLEnvelope/edXMLHeader"
	mh  = hdr + "/MessageHeader"
)

// TestMalformed: files that cannot be read give a *ParseError naming the
// element and line, matching a sentinel.
func TestMalformed(t *testing.T) {
	tests := []struct {
		name  string
		file  string // in testdata, or
		input string // inline
		err   error
		path  string
		line  int
		text  string // in the message
	}{
		{name: "truncated", file: "bad_truncated.edxml", err: edxml.ErrSyntax, path: mh + "/Subject", line: 38, text: "unexpected EOF"},
		{name: "wrong root", file: "bad_root.edxml", err: edxml.ErrNotEdXML, path: "html", line: 2, text: "root element is <html>"},
		{name: "bad date", file: "bad_date.edxml", err: edxml.ErrBadDate, path: mh + "/PromulgationInfo/PromulgationDate", line: 32, text: `"2024/13/45"`},
		{name: "unclosed element", file: "bad_unclosed.edxml", err: edxml.ErrSyntax, path: mh + "/Code/CodeNumber", line: 29, text: "element <CodeNumber> closed by </Code>"},
		{name: "unknown business type", file: "bad_doctype.edxml", err: edxml.ErrBadValue, path: hdr + "/TraceHeaderList/Bussiness/BussinessDocType", line: 58, text: `"7"`},
		{name: "no sender", file: "bad_no_from.edxml", err: edxml.ErrMissing, path: mh, line: 5, text: "OrganId"},
		{name: "charset", file: "bad_charset.edxml", err: edxml.ErrCharset, line: 1, text: "windows-1258"},
		{name: "unknown status", file: "bad_status_code.edxml", err: edxml.ErrUnknownStatus, path: mh + "/StatusCode", line: 28, text: `"09"`},
		{name: "junk before, syntax error", input: "\xef\xbb\xbfjunk\r\njunk\r\n<edXMLEnvelope>\r\n<edXMLHeader>\r\n</edXMLEnvelope>", err: edxml.ErrSyntax, path: "edXMLEnvelope/edXMLHeader", line: 5},
		{name: "junk before, bad value", input: "junk\n\n" + statusWith("", "<StatusCode>99</StatusCode>"), err: edxml.ErrUnknownStatus, path: "edXMLEnvelope/edXMLHeader/MessageHeader/StatusCode", line: 8},
		{name: "empty", input: "", err: edxml.ErrNotEdXML},
		{name: "no xml", input: "PDF? no: just text", err: edxml.ErrNotEdXML, line: 1},
		{name: "declaration only", input: `<?xml version="1.0"?>` + "\n", err: edxml.ErrNotEdXML, line: 2, text: "no root element"},
		{name: "no envelope", input: `<edXML xmlns="` + edxml.Namespace + `"><Other/></edXML>`, err: edxml.ErrMissing, path: "edXML", line: 1, text: "<edXMLEnvelope>"},
		{name: "no message header", input: "<edXMLEnvelope>\n<edXMLHeader>\n</edXMLHeader>\n</edXMLEnvelope>", err: edxml.ErrMissing, path: "edXMLEnvelope/edXMLHeader", line: 2, text: "<MessageHeader>"},
		{name: "mismatched", input: "<edXMLEnvelope>\n  <edXMLHeader>\n</edXMLEnvelope>", err: edxml.ErrSyntax, path: "edXMLEnvelope/edXMLHeader", line: 3},
		{name: "bad entity", input: "<edXMLEnvelope>\n<edXMLHeader>&bogus;</edXMLHeader></edXMLEnvelope>", err: edxml.ErrSyntax, path: "edXMLEnvelope/edXMLHeader", line: 2},
		{name: "bad timestamp", input: statusWith("<Timestamp>16/03/2024 08:00</Timestamp>", "<StatusCode>03</StatusCode>"), err: edxml.ErrBadDate, path: "edXMLEnvelope/edXMLHeader/MessageHeader/Timestamp", line: 5},
		{name: "empty status code", input: statusWith("", "<StatusCode> </StatusCode>"), err: edxml.ErrMissing, path: "edXMLEnvelope/edXMLHeader/MessageHeader/StatusCode", line: 6},
		{name: "state name is no code", input: statusWith("", "<StatusCode>sent</StatusCode>"), err: envelope.ErrUnknownState, path: "edXMLEnvelope/edXMLHeader/MessageHeader/StatusCode", line: 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			input := []byte(tc.input)
			if tc.file != "" {
				input = readFile(t, "testdata/"+tc.file)
			}
			m, err := edxml.Parse(bytes.NewReader(input))
			if err == nil {
				t.Fatalf("no error; warnings %q", m.Warnings)
			}
			var pe *edxml.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("%T %v is not a *ParseError", err, err)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("error %v does not match %v", err, tc.err)
			}
			if pe.Path != tc.path || pe.Line != tc.line {
				t.Errorf("at %q line %d, want %q line %d (%v)", pe.Path, pe.Line, tc.path, tc.line, err)
			}
			if !strings.Contains(err.Error(), tc.text) || !strings.HasPrefix(err.Error(), "edxml: ") {
				t.Errorf("message %q lacks %q", err, tc.text)
			}
		})
	}
}

// statusWith builds a status message with line5 and line6 as lines 5 and 6.
func statusWith(line5, line6 string) string {
	return "<edXMLEnvelope>\n<edXMLHeader>\n<MessageHeader>\n<From><OrganId>000.00.00.H41</OrganId></From>\n" +
		line5 + "\n" + line6 + "\n</MessageHeader>\n</edXMLHeader>\n</edXMLEnvelope>\n"
}

// TestBadBase64: undecodable content leaves the message readable, flagged;
// opening the attachment gives the place of the first bad character.
func TestBadBase64(t *testing.T) {
	m := parseFile(t, "testdata/bad_base64.edxml")
	d := m.Document()
	if len(d.Attachments) != 2 {
		t.Fatalf("%d attachments", len(d.Attachments))
	}
	if d.Attachments[0].Err != nil || string(readAll(t, d.Attachments[0].Open)) != "Nội dung hợp lệ.\n" {
		t.Errorf("good attachment: %v", d.Attachments[0].Err)
	}
	bad := d.Attachments[1]
	_, err := bad.Open()
	var pe *edxml.ParseError
	if !errors.Is(err, edxml.ErrBadBase64) || !errors.As(err, &pe) || bad.Err == nil || bad.Size != -1 {
		t.Fatalf("bad attachment: Open err %v, Err %v, Size %d", err, bad.Err, bad.Size)
	}
	if pe.Path != "edXML/AttachmentEncoded/Attachment[2]/ContentTransferEncoded" || pe.Line != 121 || !strings.Contains(err.Error(), "'%'") {
		t.Errorf("error at %q line %d: %v", pe.Path, pe.Line, err)
	}
	if !hasWarning(m.Warnings, "line 121:", `"hong.pdf" cannot be decoded`) {
		t.Errorf("warnings %q", m.Warnings)
	}
	// The real sample carries a test-tool placeholder instead of base64.
	sample := parseFile(t, samplePath(t, "edoc.edxml"))
	if a := sample.Document().Attachments[0]; !errors.Is(a.Err, edxml.ErrBadBase64) || !hasWarning(sample.Warnings, "line 130:", "cannot be decoded") {
		t.Errorf("sample attachment: %v; warnings %q", a.Err, sample.Warnings)
	}
}

func TestBase64Forms(t *testing.T) {
	tests := []struct {
		name, content string
		want          string
		bad           bool
	}{
		{name: "padded", content: "TmfDoHkgbeG7m2k=", want: "Ngày mới"},
		{name: "wrapped CRLF, spaces and tabs", content: "\r\n  TmfDo\r\n  Hkgb\teG7m2k=\r\n  ", want: "Ngày mới"},
		{name: "unpadded", content: "TmfDoHkgbeG7m2k", want: "Ngày mới"},
		{name: "entities", content: "TmfDoHkg&#13;&#10;beG7m2k=", want: "Ngày mới"},
		{name: "cdata", content: "<![CDATA[TmfDoHkgbeG7m2k=]]>", want: "Ngày mới"},
		{name: "comment inside", content: "TmfDoHkg<!-- split -->beG7m2k=", want: "Ngày mới"},
		{name: "empty", content: "", want: ""},
		{name: "one char too many", content: "TmfDoHkgb", bad: true},
		{name: "data after padding", content: "TQ==TQ==", bad: true},
		{name: "element inside", content: "TQ==<b/>", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := "<edXMLEnvelope><edXMLHeader><MessageHeader><From><OrganId>000.00.00.G22</OrganId></From>" +
				"<To><OrganId>000.00.00.H41</OrganId></To><Subject>x</Subject></MessageHeader></edXMLHeader>" +
				"<AttachmentEncoded><Attachment><AttachmentName>a.txt</AttachmentName><ContentTransferEncoded>" +
				tc.content + "</ContentTransferEncoded></Attachment></AttachmentEncoded></edXMLEnvelope>"
			m, err := edxml.Parse(strings.NewReader(doc))
			if err != nil {
				t.Fatal(err)
			}
			a := m.Document().Attachments[0]
			if tc.bad {
				if _, err := a.Open(); !errors.Is(err, edxml.ErrBadBase64) {
					t.Errorf("Open: %v, want ErrBadBase64", err)
				}
				return
			}
			if got := string(readAll(t, a.Open)); got != tc.want || a.Size != int64(len(tc.want)) {
				t.Errorf("got %q (size %d), want %q", got, a.Size, tc.want)
			}
		})
	}
}

// TestSelfClosing: text after <a/> belongs to a's parent, not to a.
func TestSelfClosing(t *testing.T) {
	doc := "<edXMLEnvelope><edXMLHeader><MessageHeader><From><OrganId>000.00.00.G22</OrganId><OrganName/>lạc</From>" +
		"<To><OrganId>000.00.00.H41</OrganId></To><Subject>x</Subject><Content/></MessageHeader></edXMLHeader></edXMLEnvelope>"
	m, err := edxml.Parse(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	h := m.Document().MessageHeader
	if h.From.OrganName != "" || h.Content != "" {
		t.Errorf("OrganName %q, Content %q: want both empty", h.From.OrganName, h.Content)
	}
	if !hasWarning(m.Warnings, "edXMLEnvelope/edXMLHeader/MessageHeader/From:", "text mixed with elements ignored") {
		t.Errorf("warnings %q", m.Warnings)
	}
}

// TestMessy: what real files get wrong is tolerated, and said.
func TestMessy(t *testing.T) {
	t.Run("BOM and junk before the XML", func(t *testing.T) {
		raw := readFile(t, "testdata/messy_bom_junk.edxml")
		m, err := edxml.Parse(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range [][]string{
			{"line 1:", "48 stray bytes before the XML skipped"},
			// Lines count from the start of the file, junk included.
			{"line 10:", "From/OrganId", `"H41.SoTTTT"`, "not in the standard form"},
			{"line 19:", `status code "3" read as "03"`},
		} {
			if !hasWarning(m.Warnings, w...) {
				t.Errorf("no warning %q in %q", w, m.Warnings)
			}
		}
		e, _, err := m.ToEnvelope(edxml.ImportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if e.From != "H41.SoTTTT" || e.Status.State != envelope.StateAccepted || e.Status.Of != "9fbfbad2-f1f8-4256-a2eb-50fb1061cddb" {
			t.Errorf("envelope %+v status %+v", e, e.Status)
		}
		if e.Extra[edxml.KeyResponseForDocumentID] != "9FBFBAD2-F1F8-4256-A2EB-50FB1061CDDB" {
			t.Errorf("original spelling of the id not kept: %v", e.Extra)
		}
		// The original is the file as received, BOM and junk included.
		o := m.Original()
		if !bytes.Equal(readAll(t, o.Open), raw) || o.Name != "original.edxml" || o.MediaType != "application/xml" || o.Size != int64(len(raw)) {
			t.Errorf("Original() = %+v", o)
		}
	})

	t.Run("no namespace, comments, empty and unknown elements", func(t *testing.T) {
		m := parseFile(t, "testdata/messy_noprefix.edxml")
		d := m.Document()
		h := d.MessageHeader
		if h.From.OrganInCharge != "Ủy ban nhân dân tỉnh Nghệ An" || h.From.OrganAdd != "" || h.From.Email != "" {
			t.Errorf("From %+v", h.From)
		}
		if len(h.To) != 1 || h.To[0].OrganID != "SoTTTT-NA" {
			t.Errorf("To %+v (the empty one dropped, the commented one absent)", h.To)
		}
		if h.PromulgationInfo.PromulgationDate.ISO() != "2024-03-05" || !h.DueDate.IsZero() || len(h.ToPlaces) != 0 || len(h.ResponseFor) != 0 {
			t.Errorf("dates/places/response %+v %+v %v %v", h.PromulgationInfo, h.DueDate, h.ToPlaces, h.ResponseFor)
		}
		if h.Subject != "V/v cung cấp thông tin\u00a0phục vụ báo cáo" {
			t.Errorf("Subject %q (first kept, &nbsp; read)", h.Subject)
		}
		if ts := d.TraceHeaderList.TraceHeader[0].Timestamp; ts.UTC().Format(time.RFC3339) != "2024-03-05T01:30:00Z" {
			t.Errorf("trace timestamp %v", ts)
		}
		wantExt := []edxml.Extension{
			{Parent: "edXMLEnvelope/edXMLHeader", XML: "<DigitalSignature></DigitalSignature>"},
			{Parent: "edXMLEnvelope/edXMLHeader/MessageHeader/DocumentType", XML: "<TypeDetail>0</TypeDetail>"},
			{Parent: "edXMLEnvelope/edXMLHeader/MessageHeader/OtherInfo", XML: "<ReferenceCodes>HS-2024-0042</ReferenceCodes>"},
		}
		diffJSON(t, "extensions", js(t, wantExt), js(t, d.Extensions))
		for _, w := range [][]string{
			{"line 3:", "no namespace"},
			{"line 8:", "OrganInCharge: read as <OrganizationInCharge>"},
			{"line 14:", `"SoTTTT-NA"`},
			{"line 17:", "To[2]: empty <To> ignored"},
			{"line 31:", `date "2024-3-5" is not in the form yyyy/MM/dd`},
			{"line 36:", "TypeDetail: unknown element kept as an extension"},
			{"line 39:", "Subject[2]: repeated <Subject> ignored"},
			{"line 63:", `"01.02.G22"`},
			{"line 64:", `timestamp "2024-03-05T08:30:00"`},
			{"line 66:", "Business: read as <Bussiness>"},
		} {
			if !hasWarning(m.Warnings, w...) {
				t.Errorf("no warning %q", w)
			}
		}
		e, atts, err := m.ToEnvelope(edxml.ImportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := []struct{ name, mediaType, content string }{
			{"15-STTTT-VP.txt", "text/plain", "Công văn số 15/STTTT-VP: nội dung tệp đính kèm thứ nhất.\n"},
			{"Phụ lục.txt", "text/plain", "Phụ lục: danh sách đơn vị nhận văn bản.\n"},
			// Directory dropped, name made unique, type guessed from the extension.
			{"Phụ lục (2).txt", "text/plain", "Tệp gửi kèm từ máy văn thư, có đường dẫn Windows.\n"},
		}
		if len(atts) != len(want) {
			t.Fatalf("%d attachments", len(atts))
		}
		for i, w := range want {
			a := atts[i]
			if a.Name != w.name || !strings.HasPrefix(a.MediaType, w.mediaType) || string(readAll(t, a.Open)) != w.content {
				t.Errorf("attachment %d: %q %q", i, a.Name, a.MediaType)
			}
			if err := envelope.CheckAttachmentName(a.Name); err != nil {
				t.Error(err)
			}
		}
		if !hasWarning(m.Warnings, `stored as "Phụ lục (2).txt"`) || !hasWarning(m.Warnings, `"khong-co-tep.pdf"`, "has no attachment") {
			t.Errorf("conversion warnings %q", m.Warnings)
		}
		if !strings.Contains(e.Extra[edxml.KeyAttachments], `"attachment_name":"C:\\Users\\vanthu\\Desktop\\Phụ lục.txt"`) {
			t.Errorf("original attachment name not kept: %s", e.Extra[edxml.KeyAttachments])
		}
	})

	t.Run("other prefix, outside signature prefix, URL-safe base64", func(t *testing.T) {
		m := parseFile(t, "testdata/messy_prefix.edxml")
		d := m.Document()
		if !bytes.HasPrefix(d.Signature, []byte("<ds:Signature>")) || !bytes.HasSuffix(d.Signature, []byte("</ds:Signature>")) {
			t.Errorf("signature %q", d.Signature)
		}
		if !hasWarning(m.Warnings, `signature prefix "ds" is declared outside`) || !hasWarning(m.Warnings, "URL-safe") {
			t.Errorf("warnings %q", m.Warnings)
		}
		got := readAll(t, d.Attachments[0].Open)
		if want := append([]byte{250, 251, 252, 253, 254, 255}, "Dữ liệu nhị phân ~~~ ???"...); !bytes.Equal(got, want) {
			t.Errorf("content %q", got)
		}
	})

	t.Run("real sample", func(t *testing.T) {
		m := parseFile(t, samplePath(t, "edoc.edxml"))
		d := m.Document()
		if d.MessageHeader.From.OrganInCharge != "Văn phòng Chính phủ" || len(d.MessageHeader.ResponseFor) != 0 {
			t.Errorf("From %+v ResponseFor %+v (the empty one dropped, the commented one absent)", d.MessageHeader.From, d.MessageHeader.ResponseFor)
		}
		if !bytes.HasPrefix(d.Signature, []byte(`<Signature xmlns="http://www.w3.org/2000/09/xmldsig#">`)) || !bytes.Contains(d.Signature, []byte("<X509Certificate>MIIGADCC")) {
			t.Errorf("signature not kept verbatim: %.80q", d.Signature)
		}
		if !hasWarning(m.Warnings, "line 76:", `"01.02.G22"`) {
			t.Errorf("warnings %q", m.Warnings)
		}
		if len(d.Manifest) != 1 || d.Manifest[0].Description != "Description 1" || d.Manifest[0].ContentType != "" {
			t.Errorf("manifest %+v", d.Manifest)
		}
	})
}

func TestLimits(t *testing.T) {
	raw := readFile(t, "testdata/doc_new.edxml")
	tests := []struct {
		name  string
		input []byte
		opts  []edxml.Option
		path  string
		text  string
	}{
		{name: "size", input: raw, opts: []edxml.Option{edxml.WithMaxSize(1000)}, text: "over 1000 bytes"},
		{name: "text", input: raw, opts: []edxml.Option{edxml.WithMaxText(12)}, path: mh + "/From/OrganId", text: "text over 12 bytes"},
		{name: "elements", input: raw, opts: []edxml.Option{edxml.WithMaxElements(20)}, text: "more than 20 elements"},
		{name: "depth", input: []byte("<edXMLEnvelope>" + strings.Repeat("<a>", 100)), text: "nested deeper than 64"},
		{name: "depth inside signature", input: []byte("<edXMLEnvelope><Signature>" + strings.Repeat("<a>", 100)), text: "nested deeper than 64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := edxml.Parse(bytes.NewReader(tc.input), tc.opts...)
			var pe *edxml.ParseError
			if !errors.Is(err, edxml.ErrTooLarge) || !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err %v, want ErrTooLarge %q", err, tc.text)
			}
			if tc.path != "" && pe.Path != tc.path {
				t.Errorf("path %q, want %q", pe.Path, tc.path)
			}
		})
	}
	_, err := edxml.ParseReaderAt(bytes.NewReader(raw), int64(len(raw)), edxml.WithMaxSize(10))
	if !errors.Is(err, edxml.ErrTooLarge) {
		t.Errorf("ParseReaderAt over the limit: %v", err)
	}
}

// countingReaderAt counts the bytes read from a file.
type countingReaderAt struct {
	r io.ReaderAt
	n atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

// TestParseReaderAt reads from a file: attachments are decoded from it when
// opened, not copied when parsed.
func TestParseReaderAt(t *testing.T) {
	f, err := os.Open("testdata/doc_new.edxml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	src := &countingReaderAt{r: f}
	m, err := edxml.ParseReaderAt(src, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	afterParse := src.n.Load()
	a := m.Document().Attachments[0]
	got := readAll(t, a.Open)
	if len(got) != 148 || a.Size != 148 {
		t.Fatalf("content %d bytes, size %d", len(got), a.Size)
	}
	// 148 bytes are about 200 base64 characters plus line breaks.
	if read := src.n.Load() - afterParse; read < 200 || read > 400 {
		t.Errorf("opening the attachment read %d bytes from the file", read)
	}
	ref := parseFile(t, "testdata/doc_new.edxml")
	diffJSON(t, "header", js(t, ref.Document().MessageHeader), js(t, m.Document().MessageHeader))
}

func TestDates(t *testing.T) {
	dates := []struct {
		in, edxml, iso string
		bad            bool
	}{
		{in: "2024/03/15", edxml: "2024/03/15", iso: "2024-03-15"},
		{in: " 2024/3/5 ", edxml: "2024/03/05", iso: "2024-03-05"},
		{in: "2024-03-15", edxml: "2024/03/15", iso: "2024-03-15"},
		{in: "2024/03/15 00:00:00", edxml: "2024/03/15", iso: "2024-03-15"},
		{in: "", edxml: "", iso: ""},
		{in: "2024/02/30", bad: true},
		{in: "15/03/2024", bad: true},
		{in: "2024/3", bad: true},
		{in: "0000/01/01", bad: true},
		{in: "２０２４/03/15", bad: true},
	}
	for _, tc := range dates {
		d, err := edxml.ParseDate(tc.in)
		if tc.bad {
			if !errors.Is(err, edxml.ErrBadDate) {
				t.Errorf("ParseDate(%q) = %v, %v; want ErrBadDate", tc.in, d, err)
			}
			continue
		}
		if err != nil || d.String() != tc.edxml || d.ISO() != tc.iso {
			t.Errorf("ParseDate(%q) = %q %q %v", tc.in, d.String(), d.ISO(), err)
		}
	}
	stamps := []struct {
		in, utc string
		bad     bool
	}{
		{in: "2024/03/15 14:05:09", utc: "2024-03-15T07:05:09Z"},
		{in: "2024/03/15 00:30:00", utc: "2024-03-14T17:30:00Z"}, // the day before in UTC
		{in: "2024/3/5 8:05:09", utc: "2024-03-05T01:05:09Z"},
		{in: "2024-03-15 14:05:09", utc: "2024-03-15T07:05:09Z"},
		{in: "2024-03-15T14:05:09", utc: "2024-03-15T07:05:09Z"},
		{in: "2024-03-15T07:05:09Z", utc: "2024-03-15T07:05:09Z"}, // a zone given is honoured
		{in: "2024/03/15", utc: "2024-03-14T17:00:00Z"},
		{in: "2024/03/15 25:00:00", bad: true},
		{in: "15/03/2024 14:05", bad: true},
		{in: "9999-12-31T23:00:00-05:00", bad: true}, // year 10000 in Vietnam
	}
	for _, tc := range stamps {
		ts, err := edxml.ParseTimestamp(tc.in)
		if tc.bad {
			if !errors.Is(err, edxml.ErrBadDate) {
				t.Errorf("ParseTimestamp(%q) = %v, %v; want ErrBadDate", tc.in, ts, err)
			}
			continue
		}
		if err != nil || ts.UTC().Format(time.RFC3339) != tc.utc || ts.Location() != edxml.Vietnam {
			t.Errorf("ParseTimestamp(%q) = %v, %v; want %s", tc.in, ts, err, tc.utc)
		}
	}
	if got := edxml.FormatTimestamp(time.Date(2024, 3, 14, 17, 30, 0, 0, time.UTC)); got != "2024/03/15 00:30:00" {
		t.Errorf("FormatTimestamp = %q", got)
	}
	if edxml.FormatTimestamp(time.Time{}) != "" {
		t.Error("zero time not written empty")
	}
}

// TestManyElements: thousands of attachments with one name and one content
// id, and one recipient listed thousands of times, stay linear (a quadratic
// match would take minutes).
func TestManyElements(t *testing.T) {
	const n = 20000
	var b strings.Builder
	b.WriteString("<edXMLEnvelope><edXMLHeader><MessageHeader><From><OrganId>000.00.00.G22</OrganId></From>")
	for i := 0; i < n; i++ {
		b.WriteString("<To><OrganId>000.00.00.H41</OrganId></To>")
	}
	b.WriteString("<Subject>x</Subject></MessageHeader></edXMLHeader><edXMLBody><edXMLManifest>")
	for i := 0; i < n; i++ {
		b.WriteString("<Reference><ContentId>cid:same</ContentId><AttachmentName>a.txt</AttachmentName></Reference>")
	}
	b.WriteString("</edXMLManifest></edXMLBody><AttachmentEncoded>")
	for i := 0; i < n; i++ {
		b.WriteString("<Attachment><ContentId>cid:same</ContentId><AttachmentName>a.txt</AttachmentName><ContentTransferEncoded>TQ==</ContentTransferEncoded></Attachment>")
	}
	b.WriteString("</AttachmentEncoded></edXMLEnvelope>")
	start := time.Now()
	m, err := edxml.Parse(strings.NewReader(b.String()), edxml.WithMaxElements(10*n))
	if err != nil {
		t.Fatal(err)
	}
	e, atts, err := m.ToEnvelope(edxml.ImportOptions{Warn: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) != n || len(e.To) != 1 || atts[n-1].Name != fmt.Sprintf("a (%d).txt", n) {
		t.Fatalf("%d attachments, last %q", len(atts), atts[n-1].Name)
	}
	if len(m.Warnings) > 1001 {
		t.Errorf("%d warnings kept", len(m.Warnings))
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %v", d)
	}
}
