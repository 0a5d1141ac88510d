package httpapi

import (
	"mime"
	"strings"
	"testing"

	"github.com/docaxis/docaxis/envelope"
)

// FuzzContentDisposition: for every name an envelope may carry, the
// header parses (RFC 6266, Go's mime package) and gives the exact name
// back; the ASCII fallback holds no quote, backslash or control byte.
func FuzzContentDisposition(f *testing.F) {
	for _, s := range []string{"a.pdf", "Công văn 123.txt", "báo cáo=1@2026.pdf", "a;b.pdf", "a%20b.pdf", "'x'.txt", "a&b+c$.pdf", "ệ\u200d.pdf"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if envelope.CheckAttachmentName(name) != nil {
			return
		}
		cd := contentDisposition(name)
		disp, params, err := mime.ParseMediaType(cd)
		if err != nil || disp != "attachment" || params["filename"] != name {
			t.Fatalf("%q read as %q %q (%v)", cd, disp, params["filename"], err)
		}
		fallback := cd[len(`attachment; filename="`):strings.Index(cd, `"; filename*=`)]
		for i := 0; i < len(fallback); i++ {
			if c := fallback[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
				t.Fatalf("fallback %q holds %q", fallback, c)
			}
		}
	})
}
