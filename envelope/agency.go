package envelope

import (
	"fmt"
	"strings"
)

// MaxCodeLength bounds agency codes, standard or not.
const MaxCodeLength = 64

// ErrInvalidCode is matched (errors.Is) by every agency-code error.
var ErrInvalidCode = fmt.Errorf("invalid agency code")

// IsStandardCode reports whether code has the form V1V2V3.Z1Z2.Y1Y2.MX1X2 of
// QCVN 102:2016/BTTTT (e.g. 000.00.00.G22): digits, dots, and one upper-case
// letter before the last two digits.
func IsStandardCode(code string) bool {
	if len(code) != 13 {
		return false
	}
	for i := 0; i < len(code); i++ {
		c := code[i]
		switch i {
		case 3, 6, 9:
			if c != '.' {
				return false
			}
		case 10:
			if c < 'A' || c > 'Z' {
				return false
			}
		default:
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}

// CheckCode returns nil when code is a standard agency code and a descriptive
// error wrapping ErrInvalidCode otherwise.
func CheckCode(code string) error {
	if IsStandardCode(code) {
		return nil
	}
	if code == "" {
		return fmt.Errorf("%w: empty", ErrInvalidCode)
	}
	return fmt.Errorf("%w %q: want the form 000.00.00.G22 (V1V2V3.Z1Z2.Y1Y2.MX1X2)", ErrInvalidCode, code)
}

// CheckNonStandardCode accepts a code an operator registers explicitly
// although it does not follow the standard format. Such codes must still map
// to a subject token reversibly, so they are limited to letters, digits, '.'
// and '-' (no '_', which the mapping uses, and no NATS wildcards).
func CheckNonStandardCode(code string) error {
	if code == "" {
		return fmt.Errorf("%w: empty", ErrInvalidCode)
	}
	if len(code) > MaxCodeLength {
		return fmt.Errorf("%w %q: longer than %d bytes", ErrInvalidCode, code, MaxCodeLength)
	}
	if code[0] == '.' || code[len(code)-1] == '.' || strings.Contains(code, "..") {
		return fmt.Errorf("%w %q: empty dot-separated part", ErrInvalidCode, code)
	}
	for _, r := range code {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
		default:
			return fmt.Errorf("%w %q: character %q not allowed (letters, digits, '.', '-')", ErrInvalidCode, code, r)
		}
	}
	return nil
}

// Token maps an agency code to a NATS subject token and durable-name part.
// Agency codes contain dots, which NATS uses as token separators; '.' becomes
// '_' and, since valid codes never contain '_', the mapping is reversible.
// This is the only place the mapping is defined.
func Token(code string) string { return strings.ReplaceAll(code, ".", "_") }

// CodeFromToken reverses Token.
func CodeFromToken(token string) string { return strings.ReplaceAll(token, "_", ".") }
