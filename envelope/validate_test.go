package envelope_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/docaxis/docaxis/envelope"
)

func TestValidateAcceptsValid(t *testing.T) {
	of := envelope.NewID()
	tests := []struct {
		name string
		e    *envelope.Envelope
	}{
		{"document", validEnvelope()},
		{"minimal document", envelope.New(codeA, []string{codeB}, "x")},
		{"status", envelope.NewStatus(codeB, codeA, of, envelope.StateDelivered)},
		{"revoke", func() *envelope.Envelope {
			e := envelope.New(codeA, []string{codeB}, "thu hồi")
			e.Kind, e.Refers, e.Reason = envelope.KindRevoke, of, "nhầm nơi nhận"
			return e
		}()},
		{"update", func() *envelope.Envelope {
			e := envelope.New(codeA, []string{codeB}, "cập nhật")
			e.Kind, e.Refers = envelope.KindUpdate, of
			return e
		}()},
		{"replace", func() *envelope.Envelope {
			e := envelope.New(codeA, []string{codeB}, "thay thế")
			e.Kind, e.Refers = envelope.KindReplace, of
			return e
		}()},
		{"limits", func() *envelope.Envelope {
			e := envelope.New(codeA, []string{codeB}, strings.Repeat("s", envelope.MaxSubject))
			e.Body = strings.Repeat("b", envelope.MaxBody)
			e.Attachments = []envelope.Attachment{{Name: strings.Repeat("n", envelope.MaxName), Size: 0, SHA256: strings.Repeat("0", 64), Key: "k"}}
			return e
		}()},
		{"many recipients", func() *envelope.Envelope {
			to := make([]string, envelope.MaxRecipients)
			for i := range to {
				to[i] = fmt.Sprintf("%03d.00.00.H%02d", i, i%100)
			}
			return envelope.New(codeA, to, "x")
		}()},
		{"created slightly ahead (clock skew)", func() *envelope.Envelope {
			e := envelope.New(codeA, []string{codeB}, "x")
			e.Created = time.Now().Add(5 * time.Minute)
			return e
		}()},
		{"created long ago (replayed history)", func() *envelope.Envelope {
			e := envelope.New(codeA, []string{codeB}, "x")
			e.Created = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
			return e
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.e.Validate(); err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
		})
	}
}

func TestValidateRefuses(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	att := func(name string) envelope.Attachment {
		return envelope.Attachment{Name: name, MediaType: "text/plain", Size: 1, SHA256: sha, Key: "k/" + name}
	}
	doc := func(f func(e *envelope.Envelope)) func() *envelope.Envelope {
		return func() *envelope.Envelope {
			e := validEnvelope()
			f(e)
			return e
		}
	}
	status := func(f func(e *envelope.Envelope)) func() *envelope.Envelope {
		return func() *envelope.Envelope {
			e := envelope.NewStatus(codeB, codeA, envelope.NewID(), envelope.StateAccepted)
			f(e)
			return e
		}
	}
	tests := []struct {
		name  string
		e     func() *envelope.Envelope
		field string
	}{
		{"nil envelope", func() *envelope.Envelope { return nil }, "envelope"},
		{"empty id", doc(func(e *envelope.Envelope) { e.ID = "" }), "id"},
		{"id not a UUID", doc(func(e *envelope.Envelope) { e.ID = "not-a-uuid" }), "id"},
		{"id upper case", doc(func(e *envelope.Envelope) { e.ID = strings.ToUpper(e.ID) }), "id"},
		{"id in braces", doc(func(e *envelope.Envelope) { e.ID = "{" + e.ID + "}" }), "id"},
		{"id as URN", doc(func(e *envelope.Envelope) { e.ID = "urn:uuid:" + e.ID }), "id"},
		{"id without dashes", doc(func(e *envelope.Envelope) { e.ID = strings.ReplaceAll(e.ID, "-", "") }), "id"},
		{"empty kind", doc(func(e *envelope.Envelope) { e.Kind = "" }), "kind"},
		{"unknown kind", doc(func(e *envelope.Envelope) { e.Kind = "memo" }), "kind"},
		{"kind in upper case", doc(func(e *envelope.Envelope) { e.Kind = "DOCUMENT" }), "kind"},
		{"empty from", doc(func(e *envelope.Envelope) { e.From = "" }), "from"},
		{"malformed from", doc(func(e *envelope.Envelope) { e.From = "000.00.00.g22" }), "from"},
		{"from with wildcard", doc(func(e *envelope.Envelope) { e.From = "000.00.00.G2*" }), "from"},
		{"no recipients", doc(func(e *envelope.Envelope) { e.To = nil }), "to"},
		{"empty recipient list", doc(func(e *envelope.Envelope) { e.To = []string{} }), "to"},
		{"too many recipients", doc(func(e *envelope.Envelope) {
			e.To = make([]string, envelope.MaxRecipients+1)
			for i := range e.To {
				e.To[i] = fmt.Sprintf("%03d.00.00.H%02d", i%1000, i/1000)
			}
		}), "to"},
		{"malformed first recipient", doc(func(e *envelope.Envelope) { e.To[0] = "H41" }), "to[0]"},
		{"malformed second recipient", doc(func(e *envelope.Envelope) { e.To[1] = "000.00.00.H4" }), "to[1]"},
		{"empty recipient", doc(func(e *envelope.Envelope) { e.To[1] = "" }), "to[1]"},
		{"duplicate recipient", doc(func(e *envelope.Envelope) { e.To = []string{codeB, codeC, codeB} }), "to[2]"},
		{"addressed to itself", doc(func(e *envelope.Envelope) { e.To = []string{codeB, codeA} }), "to[1]"},
		{"created missing", doc(func(e *envelope.Envelope) { e.Created = time.Time{} }), "created"},
		{"created in the future", doc(func(e *envelope.Envelope) { e.Created = time.Now().Add(time.Hour) }), "created"},
		{"empty subject", doc(func(e *envelope.Envelope) { e.Subject = "" }), "subject"},
		{"oversized subject", doc(func(e *envelope.Envelope) { e.Subject = strings.Repeat("s", envelope.MaxSubject+1) }), "subject"},
		{"subject not UTF-8", doc(func(e *envelope.Envelope) { e.Subject = "V\xe1 vi\xeac" }), "subject"},
		{"oversized body", doc(func(e *envelope.Envelope) { e.Body = strings.Repeat("b", envelope.MaxBody+1) }), "body"},
		{"body not UTF-8", doc(func(e *envelope.Envelope) { e.Body = "ok\xff" }), "body"},
		{"reason not UTF-8", doc(func(e *envelope.Envelope) { e.Reason = "\xc3" }), "reason"},
		{"document field not UTF-8", doc(func(e *envelope.Envelope) { e.Document.CodeNotation = "VP\xff" }), "document.code_notation"},
		{"revoke without refers", doc(func(e *envelope.Envelope) { e.Kind = envelope.KindRevoke }), "refers"},
		{"update without refers", doc(func(e *envelope.Envelope) { e.Kind = envelope.KindUpdate }), "refers"},
		{"replace without refers", doc(func(e *envelope.Envelope) { e.Kind = envelope.KindReplace }), "refers"},
		{"replace refers to garbage", doc(func(e *envelope.Envelope) { e.Kind, e.Refers = envelope.KindReplace, "earlier" }), "refers"},
		{"revoke refers to a URN", doc(func(e *envelope.Envelope) { e.Kind, e.Refers = envelope.KindRevoke, "urn:uuid:"+envelope.NewID() }), "refers"},
		{"status without status", status(func(e *envelope.Envelope) { e.Status = nil }), "status"},
		{"status of nothing", status(func(e *envelope.Envelope) { e.Status.Of = "" }), "status.of"},
		{"status of a non-canonical id", status(func(e *envelope.Envelope) { e.Status.Of = "{" + e.Status.Of + "}" }), "status.of"},
		{"status with empty state", status(func(e *envelope.Envelope) { e.Status.State = "" }), "status.state"},
		{"status with bad state", status(func(e *envelope.Envelope) { e.Status.State = "archived" }), "status.state"},
		{"status with a code for a state", status(func(e *envelope.Envelope) { e.Status.State = "03" }), "status.state"},
		{"status to two agencies", status(func(e *envelope.Envelope) { e.To = []string{codeA, codeC} }), "to"},
		{"status on a document", doc(func(e *envelope.Envelope) {
			e.Status = &envelope.Status{Of: envelope.NewID(), State: envelope.StateAccepted}
		}), "status"},
		{"too many attachments", doc(func(e *envelope.Envelope) {
			e.Attachments = make([]envelope.Attachment, envelope.MaxAttachments+1)
			for i := range e.Attachments {
				e.Attachments[i] = att(fmt.Sprintf("f%d", i))
			}
		}), "attachments"},
		{"attachment without name", doc(func(e *envelope.Envelope) { e.Attachments[0].Name = "" }), "attachments[0].name"},
		{"attachment name with slash", doc(func(e *envelope.Envelope) { e.Attachments[0].Name = "../etc/passwd" }), "attachments[0].name"},
		{"attachment name with backslash", doc(func(e *envelope.Envelope) { e.Attachments[0].Name = `..\boot.ini` }), "attachments[0].name"},
		{"attachment name dot", doc(func(e *envelope.Envelope) { e.Attachments[0].Name = "." }), "attachments[0].name"},
		{"attachment name dot dot", doc(func(e *envelope.Envelope) { e.Attachments[0].Name = ".." }), "attachments[0].name"},
		{"attachment name with NUL", doc(func(e *envelope.Envelope) { e.Attachments[0].Name = "a\x00.pdf" }), "attachments[0].name"},
		{"attachment name with newline", doc(func(e *envelope.Envelope) { e.Attachments[0].Name = "a\n.pdf" }), "attachments[0].name"},
		{"attachment name with DEL", doc(func(e *envelope.Envelope) { e.Attachments[0].Name = "a\x7f.pdf" }), "attachments[0].name"},
		{"attachment name with C1 control", doc(func(e *envelope.Envelope) { e.Attachments[0].Name = "a\u0085.pdf" }), "attachments[0].name"},
		{"attachment name not UTF-8", doc(func(e *envelope.Envelope) { e.Attachments[0].Name = "a\xff.pdf" }), "attachments[0].name"},
		{"attachment name too long", doc(func(e *envelope.Envelope) { e.Attachments[0].Name = strings.Repeat("n", envelope.MaxName+1) }), "attachments[0].name"},
		{"duplicate attachment name", doc(func(e *envelope.Envelope) {
			e.Attachments = append(e.Attachments, att("b.pdf"), att(e.Attachments[0].Name))
		}), "attachments[2].name"},
		{"negative size", doc(func(e *envelope.Envelope) { e.Attachments[0].Size = -1 }), "attachments[0].size"},
		{"sha256 empty", doc(func(e *envelope.Envelope) { e.Attachments[0].SHA256 = "" }), "attachments[0].sha256"},
		{"sha256 short", doc(func(e *envelope.Envelope) { e.Attachments[0].SHA256 = sha[:63] }), "attachments[0].sha256"},
		{"sha256 upper case", doc(func(e *envelope.Envelope) { e.Attachments[0].SHA256 = strings.ToUpper(sha) }), "attachments[0].sha256"},
		{"sha256 not hex", doc(func(e *envelope.Envelope) { e.Attachments[0].SHA256 = strings.Repeat("zz", 32) }), "attachments[0].sha256"},
		{"sha256 with newline", doc(func(e *envelope.Envelope) { e.Attachments[0].SHA256 = sha + "\n" }), "attachments[0].sha256"},
		{"missing key", doc(func(e *envelope.Envelope) { e.Attachments[0].Key = "" }), "attachments[0].key"},
		{"key too long", doc(func(e *envelope.Envelope) { e.Attachments[0].Key = strings.Repeat("k", envelope.MaxField+1) }), "attachments[0].key"},
		{"second attachment bad", doc(func(e *envelope.Envelope) {
			a := att("b.pdf")
			a.Size = -5
			e.Attachments = append(e.Attachments, a)
		}), "attachments[1].size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.e().Validate()
			if !errors.Is(err, envelope.ErrInvalid) {
				t.Fatalf("Validate() = %v, want ErrInvalid", err)
			}
			var ve *envelope.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %T, want *ValidationError", err)
			}
			if ve.Field != tt.field {
				t.Errorf("field = %q, want %q (%v)", ve.Field, tt.field, err)
			}
			if ve.Reason == "" || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("message %q does not name the field and reason", err)
			}
		})
	}
}

// TestValidateCodeCause checks that a bad agency code keeps its cause, so
// callers can tell a code problem from other validation errors.
func TestValidateCodeCause(t *testing.T) {
	e := validEnvelope()
	e.From = "bad code"
	err := e.Validate()
	if !errors.Is(err, envelope.ErrInvalidCode) || !errors.Is(err, envelope.ErrInvalid) {
		t.Fatalf("Validate() = %v, want both ErrInvalid and ErrInvalidCode", err)
	}
	e = validEnvelope()
	e.Subject = ""
	if err := e.Validate(); errors.Is(err, envelope.ErrInvalidCode) {
		t.Errorf("an empty subject is not a code error: %v", err)
	}
}

func TestValidateAllowCodes(t *testing.T) {
	registered := map[string]bool{"PILOT-1": true, "vn.pilot.2": true, "bad_code": true}
	known := envelope.AllowCodes(func(code string) bool { return registered[code] })
	tests := []struct {
		name     string
		from, to string
		opts     []envelope.ValidateOption
		field    string // "" when valid
	}{
		{"standard codes need no option", codeA, codeB, nil, ""},
		{"registered sender", "PILOT-1", codeB, []envelope.ValidateOption{known}, ""},
		{"registered recipient", codeA, "vn.pilot.2", []envelope.ValidateOption{known}, ""},
		{"both registered", "PILOT-1", "vn.pilot.2", []envelope.ValidateOption{known}, ""},
		{"registered but option missing", "PILOT-1", codeB, nil, "from"},
		{"unregistered recipient", codeA, "PILOT-3", []envelope.ValidateOption{known}, "to[0]"},
		// The registry may be wrong; a code that cannot map to a subject
		// token reversibly is still refused.
		{"registered code with underscore", codeA, "bad_code", []envelope.ValidateOption{known}, "to[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := envelope.New(tt.from, []string{tt.to}, "x").Validate(tt.opts...)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var ve *envelope.ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field {
				t.Fatalf("Validate() = %v, want a *ValidationError on %s", err, tt.field)
			}
		})
	}
}

func TestCheckAttachmentName(t *testing.T) {
	ok := []string{"a.pdf", "Công văn số 12.docx", "...pdf", "a..b", ".hidden", "tên có dấu cách .txt",
		"CONSOLE.txt", "con1.pdf", "COM10", "LPT", "nul_.txt", "aux-2.pdf", "x.con", // not device names
		"ক্‍ষ.pdf", "👨‍👩‍👧.png", // ZWJ and ZWNJ spell words and emoji
		strings.Repeat("ệ", 84) + "abc", // 255 bytes exactly
	}
	for _, name := range ok {
		if err := envelope.CheckAttachmentName(name); err != nil {
			t.Errorf("CheckAttachmentName(%q) = %v, want nil", name, err)
		}
	}
	bad := []struct{ name, reason string }{
		{"", "empty"},
		{".", "empty"},
		{"..", "empty"},
		{strings.Repeat("ệ", 84) + "abcd", "256 bytes, at most 255"},
		{"\xfe", "UTF-8"},
		{"a/b", "path separator"},
		{`a\b`, "path separator"},
		{"/abs", "path separator"},
		{"a\x00", "control character U+0000"},
		{"a\x1f", "control character"},
		{"a\x7f", "control character"},
		{"a\u009b", "control character"},
		{"invoice\u202Efdp.exe", "bidirectional control U+202E"},
		{"a\u202A.pdf", "bidirectional control U+202A"},
		{"a\u202B.pdf", "bidirectional control"},
		{"a\u202C.pdf", "bidirectional control"},
		{"a\u202D.pdf", "bidirectional control"},
		{"\u2066a.pdf", "bidirectional control U+2066"},
		{"a\u2067.pdf", "bidirectional control"},
		{"a\u2068.pdf", "bidirectional control"},
		{"a\u2069.pdf", "bidirectional control U+2069"},
		{"a\u200E.pdf", "bidirectional control U+200E"},
		{"a\u200F.pdf", "bidirectional control U+200F"},
		{"a\u061C.pdf", "bidirectional control U+061C"},
		{"a\u200B.pdf", "invisible format character U+200B"},
		{"\uFEFFa.pdf", "invisible format character"},
		{"a\u2028b.pdf", "line separator"},
		{"a\uFFFD.pdf", "replacement character"},
		{"a\uFFFF.pdf", "noncharacter"},
		{"a:b.pdf", "Windows refuses"},
		{"a.pdf:Zone.Identifier", "Windows refuses"},
		{"a?.pdf", "Windows refuses"},
		{"a*.pdf", "Windows refuses"},
		{"a<b>.pdf", "Windows refuses"},
		{`a"b.pdf`, "Windows refuses"},
		{"a|b.pdf", "Windows refuses"},
		{"a.pdf.", "ends with '.'"},
		{"a.pdf ", "ends with ' '"},
		{"CON", "CON is a Windows device name"},
		{"con", "CON is a Windows device name"},
		{"Con.txt", "CON is a Windows device name"},
		{"PRN.pdf", "PRN"},
		{"aux.tar.gz", "AUX"},
		{"NUL", "NUL"},
		{"nul .txt", "NUL"},
		{"COM1", "COM1"},
		{"com9.pdf", "COM9"},
		{"COM0.txt", "COM0"},
		{"LPT1", "LPT1"},
		{"lpt9.doc", "LPT9"},
		{"COM\u00b9.txt", "COM¹"},
		{"conin$", "CONIN$"},
		{"CONOUT$.log", "CONOUT$"},
	}
	for _, tc := range bad {
		name := tc.name
		err := envelope.CheckAttachmentName(name)
		if !errors.Is(err, envelope.ErrAttachmentName) || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("CheckAttachmentName(%q) = %v, want an ErrAttachmentName saying %q", name, err, tc.reason)
		}
		// What a foreign format brings is cleaned rather than refused.
		if c := envelope.CleanAttachmentName(name); c != "" {
			if err := envelope.CheckAttachmentName(c); err != nil {
				t.Errorf("CleanAttachmentName(%q) = %q, refused: %v", name, c, err)
			}
		}
	}
}

// TestAttachmentNamesOnReceipt: a recipient validates what it received as
// the sender should have: a name refused at send makes the envelope
// invalid, naming the attachment; names differing only in case too.
func TestAttachmentNamesOnReceipt(t *testing.T) {
	sha := strings.Repeat("0", 64)
	for _, names := range [][]string{{"CON.pdf"}, {"a\u202Etxt.exe"}, {"../x"}, {"a.pdf", "b.pdf", "A.PDF"}} {
		e := envelope.New(codeA, []string{codeB}, "x")
		for _, n := range names {
			e.Attachments = append(e.Attachments, envelope.Attachment{Name: n, MediaType: "application/pdf", SHA256: sha, Key: "k/" + n})
		}
		err := e.Validate()
		var ve *envelope.ValidationError
		field := fmt.Sprintf("attachments[%d].name", len(names)-1)
		if !errors.As(err, &ve) || ve.Field != field || !errors.Is(err, envelope.ErrInvalid) {
			t.Errorf("%q: Validate() = %v, want an invalid %s", names, err, field)
		}
	}
}

func TestKindValid(t *testing.T) {
	for _, k := range []envelope.Kind{envelope.KindDocument, envelope.KindRevoke, envelope.KindUpdate, envelope.KindReplace, envelope.KindStatus} {
		if !k.Valid() {
			t.Errorf("%q.Valid() = false", k)
		}
	}
	for _, k := range []envelope.Kind{"", "Document", "recall", "new"} {
		if k.Valid() {
			t.Errorf("%q.Valid() = true", k)
		}
	}
}

func TestNew(t *testing.T) {
	to := []string{codeB, codeC}
	e := envelope.New(codeA, to, "x")
	to[0] = codeA // New must copy: the caller's slice is not the envelope's
	if e.To[0] != codeB {
		t.Errorf("New kept the caller's slice")
	}
	if e.Kind != envelope.KindDocument || e.Created.Location() != time.UTC || e.Created.Nanosecond()%int(time.Millisecond) != 0 {
		t.Errorf("New = %+v: want a document created now in UTC at millisecond precision", e)
	}
	a, b := envelope.NewID(), envelope.NewID()
	if a == b || a > b {
		t.Errorf("NewID: %s then %s, want distinct time-ordered ids", a, b)
	}
	s := envelope.NewStatus(codeB, codeA, a, envelope.StateDone)
	if s.Kind != envelope.KindStatus || s.From != codeB || len(s.To) != 1 || s.To[0] != codeA || s.Status.Of != a || s.Status.State != envelope.StateDone {
		t.Errorf("NewStatus = %+v", s)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("NewStatus(...).Validate() = %v", err)
	}
}

// FuzzAttachmentName: what CleanAttachmentName makes of any input is
// empty or a name CheckAttachmentName accepts, and cleaning it again
// changes nothing; what CheckAttachmentName accepts has no character it
// refuses, whatever the input's bytes.
func FuzzAttachmentName(f *testing.F) {
	for _, s := range []string{"a.pdf", "CON", "nul .txt", "a\u202Eb", "../x", `C:\a\b.pdf`, "a.pdf. ", "\xff\xfe", "x:y", "COM\u00b9", strings.Repeat("ệ", 90) + ".pdf", " . "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		c := envelope.CleanAttachmentName(name)
		if c != "" {
			if err := envelope.CheckAttachmentName(c); err != nil {
				t.Fatalf("CleanAttachmentName(%q) = %q, refused: %v", name, c, err)
			}
			if again := envelope.CleanAttachmentName(c); again != c {
				t.Fatalf("cleaning %q again gives %q", c, again)
			}
		}
		if envelope.CheckAttachmentName(name) == nil {
			if !utf8.ValidString(name) || len(name) > envelope.MaxName || strings.ContainsAny(name, "/\\\x00") {
				t.Fatalf("accepted %q", name)
			}
			for _, r := range name {
				if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
					t.Fatalf("accepted %q with %U", name, r)
				}
			}
		}
	})
}
