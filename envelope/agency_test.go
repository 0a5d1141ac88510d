package envelope_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/docaxis/docaxis/envelope"
)

// standardCodes are well-formed codes of QCVN 102:2016/BTTTT.
var standardCodes = []string{
	"000.00.00.G22", // Government Office
	"000.00.00.H41", // a provincial people's committee
	"000.00.00.K14",
	"123.45.67.A00",
	"999.99.99.Z99",
	"000.00.01.H14",
}

func TestStandardCodes(t *testing.T) {
	tests := []struct {
		name string
		code string
		ok   bool
	}{
		{"government office", "000.00.00.G22", true},
		{"province", "000.00.00.H41", true},
		{"all nines", "999.99.99.Z99", true},
		{"letter A", "123.45.67.A00", true},
		{"empty", "", false},
		{"one short", "000.00.00.G2", false},
		{"one long", "000.00.00.G222", false},
		{"missing part", "00.00.00.G22", false},
		{"lower-case letter", "000.00.00.g22", false},
		{"digit where letter expected", "000.00.00.022", false},
		{"letter where digit expected", "000.0A.00.G22", false},
		{"letter in first part", "A00.00.00.G22", false},
		{"letter at the end", "000.00.00.G2A", false},
		{"dot moved left", "00.000.00.G22", false},
		{"dot moved right", "0000.0.00.G22", false},
		{"no dots", "0000000000G22", false},
		{"dashes for dots", "000-00-00-G22", false},
		{"underscore for dots", "000_00_00_G22", false},
		{"token form", envelope.Token("000.00.00.G22"), false},
		{"leading space", " 000.00.00.G22"[:13], false},
		{"trailing space", "000.00.00.G2 ", false},
		{"NATS wildcard star", "000.00.00.G2*", false},
		{"NATS wildcard gt", "000.00.00.G2>", false},
		{"star part", "000.*.00.G22", false},
		{"unicode digit", "٠٠٠.00.00.G22", false},
		{"unicode letter", "000.00.00.Đ22", false},
		{"fullwidth letter", "000.00.00.Ｇ2", false},
		{"NUL byte", "000.00.00.G2\x00", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := envelope.IsStandardCode(tt.code); got != tt.ok {
				t.Errorf("IsStandardCode(%q) = %v, want %v", tt.code, got, tt.ok)
			}
			err := envelope.CheckCode(tt.code)
			if tt.ok {
				if err != nil {
					t.Errorf("CheckCode(%q) = %v, want nil", tt.code, err)
				}
				return
			}
			if !errors.Is(err, envelope.ErrInvalidCode) {
				t.Fatalf("CheckCode(%q) = %v, want ErrInvalidCode", tt.code, err)
			}
			// The message must say what is wrong, not just "invalid".
			if tt.code == "" && !strings.Contains(err.Error(), "empty") {
				t.Errorf("CheckCode(\"\") = %q, want it to say empty", err)
			}
			if tt.code != "" && !strings.Contains(err.Error(), "000.00.00.G22") {
				t.Errorf("CheckCode(%q) = %q, want it to show the expected form", tt.code, err)
			}
		})
	}
}

func TestNonStandardCodes(t *testing.T) {
	tests := []struct {
		name string
		code string
		ok   bool
		want string // part of the error message
	}{
		{"standard code", "000.00.00.G22", true, ""},
		{"short name", "TEST", true, ""},
		{"lower case", "pilot-agency", true, ""},
		{"dots and dashes", "vn.gov.pilot-1", true, ""},
		{"single character", "x", true, ""},
		{"at the limit", strings.Repeat("a", envelope.MaxCodeLength), true, ""},
		{"empty", "", false, "empty"},
		{"too long", strings.Repeat("a", envelope.MaxCodeLength+1), false, "longer than"},
		{"leading dot", ".abc", false, "empty dot-separated part"},
		{"trailing dot", "abc.", false, "empty dot-separated part"},
		{"double dot", "a..b", false, "empty dot-separated part"},
		{"only a dot", ".", false, "empty dot-separated part"},
		{"underscore", "a_b", false, "'_'"},
		{"NATS wildcard star", "a.*", false, "'*'"},
		{"NATS wildcard gt", "a.>", false, "'>'"},
		{"space", "a b", false, "' '"},
		{"tab", "a\tb", false, "'\\t'"},
		{"newline", "a\nb", false, "'\\n'"},
		{"slash", "a/b", false, "'/'"},
		{"backslash", `a\b`, false, `'\\'`},
		{"dollar (JetStream API prefix)", "$JS", false, "'$'"},
		{"Vietnamese letter", "Sở-Nội-vụ", false, "'ở'"},
		{"invalid UTF-8", "a\xffb", false, "not allowed"},
		{"NUL", "a\x00b", false, "not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := envelope.CheckNonStandardCode(tt.code)
			if tt.ok {
				if err != nil {
					t.Fatalf("CheckNonStandardCode(%q) = %v, want nil", tt.code, err)
				}
				return
			}
			if !errors.Is(err, envelope.ErrInvalidCode) {
				t.Fatalf("CheckNonStandardCode(%q) = %v, want ErrInvalidCode", tt.code, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("CheckNonStandardCode(%q) = %q, want it to mention %s", tt.code, err, tt.want)
			}
		})
	}
}

func TestTokenRoundTrip(t *testing.T) {
	codes := append([]string{"TEST", "vn.gov.pilot-1", "a.b.c.d.e", "x"}, standardCodes...)
	for _, code := range codes {
		if err := envelope.CheckNonStandardCode(code); err != nil {
			t.Fatalf("test code %q is not valid: %v", code, err)
		}
		tok := envelope.Token(code)
		// A token is one NATS subject token and a valid durable name part.
		if strings.ContainsAny(tok, ".*> \t\r\n/\\") {
			t.Errorf("Token(%q) = %q contains a character NATS reserves", code, tok)
		}
		if back := envelope.CodeFromToken(tok); back != code {
			t.Errorf("CodeFromToken(Token(%q)) = %q", code, back)
		}
	}
	if got := envelope.Token("000.00.00.G22"); got != "000_00_00_G22" {
		t.Errorf("Token = %q, want 000_00_00_G22", got)
	}
}

// TestTokenInjective checks that distinct valid codes never share a token:
// two agencies sharing a mailbox subject would read each other's mail.
func TestTokenInjective(t *testing.T) {
	codes := append([]string{"a.b", "a-b", "ab", "a.b.c", "a.bc", "ab.c"}, standardCodes...)
	seen := map[string]string{}
	for _, c := range codes {
		tok := envelope.Token(c)
		if other, ok := seen[tok]; ok {
			t.Errorf("codes %q and %q share token %q", c, other, tok)
		}
		seen[tok] = c
	}
}
