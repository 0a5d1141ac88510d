package pdf

import (
	"bytes"
	"fmt"
	"strings"
)

// Minimal returns a valid one-page PDF (A4, Helvetica 12pt) showing text,
// one line per "\n". It writes a classic cross-reference table with exact
// offsets, so any reader and pdfsign can parse and sign it. Characters
// outside printable ASCII are drawn as '?': the standard Helvetica font has
// no Vietnamese glyphs, and the helper is for tests and examples, not for
// typesetting.
func Minimal(text string) []byte {
	var content bytes.Buffer
	content.WriteString("BT\n/F1 12 Tf\n14 TL\n72 770 Td\n")
	for i, line := range strings.Split(text, "\n") {
		if i > 0 {
			content.WriteString("T*\n")
		}
		content.WriteString(pdfLiteral(line))
		content.WriteString(" Tj\n")
	}
	content.WriteString("ET\n")

	objects := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%sendstream", content.Len(), content.Bytes()),
	}

	var b bytes.Buffer
	// The second line holds bytes above 127 so that tools treat the file
	// as binary (ISO 32000-1, 7.5.2).
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(objects))
	for i, obj := range objects {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, obj)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n", len(objects)+1)
	// Every entry is exactly 20 bytes, the EOL being two characters.
	b.WriteString("0000000000 65535 f\r\n")
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n\r\n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objects)+1, xref)
	return b.Bytes()
}

// pdfLiteral returns s as a PDF literal string.
func pdfLiteral(s string) string {
	var b strings.Builder
	b.WriteByte('(')
	for _, r := range s {
		switch {
		case r == '(' || r == ')' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r > 0x7e:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(')')
	return b.String()
}
