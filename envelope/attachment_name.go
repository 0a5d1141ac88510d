package envelope

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxName, the longest attachment name in bytes, is the NAME_MAX of Linux
// file systems; as UTF-8 it is never more than the 255 UTF-16 units that
// NTFS and APFS allow, so a name valid at send can be saved anywhere.
const MaxName = 255

// ErrAttachmentName is matched by every refusal of CheckAttachmentName.
var ErrAttachmentName = errors.New("attachment name not allowed")

// AttachmentNameError says why a name is refused.
type AttachmentNameError struct {
	Name   string
	Reason string
}

func (e *AttachmentNameError) Error() string {
	return fmt.Sprintf("attachment name %q: %s", e.Name, e.Reason)
}

// Is makes errors.Is(err, ErrAttachmentName) match.
func (e *AttachmentNameError) Is(target error) bool { return target == ErrAttachmentName }

func badName(name, format string, args ...any) error {
	if !utf8.ValidString(name) {
		name = strings.ToValidUTF8(name, "\uFFFD")
	}
	if len(name) > 80 {
		name = truncateUTF8(name, 80) + "..."
	}
	return &AttachmentNameError{Name: name, Reason: fmt.Sprintf(format, args...)}
}

// CheckAttachmentName refuses a name that a recipient could not save as
// given, on any system, or that would show something else than it is:
//   - empty, ".", "..", or over MaxName bytes, or not UTF-8;
//   - a path separator or another character Windows refuses (< > : " | ? *;
//     ':' would also name an NTFS alternate data stream);
//   - control characters, bidirectional controls (U+202A-U+202E,
//     U+2066-U+2069, U+200E, U+200F, U+061C: "cod\u202Efdp.exe" shows as a
//     PDF), other invisible format characters and line separators;
//   - a trailing dot or space (Windows drops them: "a.pdf." saves as
//     "a.pdf");
//   - a Windows device name (CON, PRN, AUX, NUL, COM0-9, LPT0-9, CONIN$,
//     CONOUT$) in any case, with or without an extension ("nul.txt" opens
//     the device, not a file).
func CheckAttachmentName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return badName(name, "empty, \".\" and \"..\" are not file names")
	case len(name) > MaxName:
		return badName(name, "%d bytes, at most %d", len(name), MaxName)
	case !utf8.ValidString(name):
		return badName(name, "not valid UTF-8")
	}
	for _, r := range name {
		if why := forbiddenRune(r); why != "" {
			return badName(name, "contains %s %U", why, r)
		}
	}
	if last := name[len(name)-1]; last == '.' || last == ' ' {
		return badName(name, "ends with %q (Windows drops it, the saved name would differ)", last)
	}
	if dev := deviceName(name); dev != "" {
		return badName(name, "%s is a Windows device name", dev)
	}
	return nil
}

// forbiddenRune says what r is when a file name must not hold it, or "".
func forbiddenRune(r rune) string {
	switch {
	case r == '/' || r == '\\':
		return "a path separator"
	case strings.ContainsRune(`<>:"|?*`, r):
		return "a character Windows refuses in file names"
	case isBidiControl(r):
		return "the bidirectional control"
	case unicode.IsControl(r): // C0, DEL and C1
		return "the control character"
	case r == '\u200C' || r == '\u200D':
		return "" // ZWNJ and ZWJ: part of the spelling of some scripts and emoji
	case unicode.Is(unicode.Cf, r):
		return "the invisible format character"
	case unicode.In(r, unicode.Zl, unicode.Zp):
		return "the line separator"
	case r == utf8.RuneError:
		return "the replacement character (a name damaged by a wrong encoding)"
	case r >= 0xFDD0 && r <= 0xFDEF, r&0xFFFE == 0xFFFE:
		return "the noncharacter"
	}
	return ""
}

// isBidiControl reports the characters that reorder the text around them.
func isBidiControl(r rune) bool {
	return r == '\u061C' || r == '\u200E' || r == '\u200F' ||
		(r >= '\u202A' && r <= '\u202E') || (r >= '\u2066' && r <= '\u2069')
}

// deviceName returns the Windows device name that name opens, or "".
// Windows ignores everything from the first dot, and spaces before it.
func deviceName(name string) string {
	base := name
	if i := strings.IndexByte(base, '.'); i >= 0 {
		base = base[:i]
	}
	base = strings.TrimRight(base, " ")
	switch u := strings.ToUpper(base); u {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return u
	default:
		if len(u) >= 4 && (strings.HasPrefix(u, "COM") || strings.HasPrefix(u, "LPT")) {
			switch u[3:] {
			case "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "¹", "²", "³":
				return u
			}
		}
	}
	return ""
}

// CleanAttachmentName makes name acceptable to CheckAttachmentName by
// dropping what cannot be in a name and replacing what could mislead, for
// names that come from foreign formats (edXML) rather than from a person
// who can be told to rename. Directories are dropped; "" is returned when
// nothing usable is left.
func CleanAttachmentName(name string) string {
	name = strings.ToValidUTF8(name, "")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		switch why := forbiddenRune(r); {
		case why == "":
			return r
		case strings.ContainsRune(`<>:"|?*`, r):
			return '_'
		case unicode.In(r, unicode.Zl, unicode.Zp):
			return ' '
		}
		return -1
	}, name)
	name = fitName(strings.TrimSpace(name))
	if name != "" && deviceName(name) != "" {
		// The prefix may take the name past MaxName again.
		name = fitName("_" + name)
	}
	return name
}

// fitName cuts name to MaxName bytes, keeping a short extension, and
// drops the dots and spaces it ends with.
func fitName(name string) string {
	if len(name) > MaxName {
		ext := extension(name)
		if len(ext) > 16 {
			ext = ""
		}
		name = truncateUTF8(name[:len(name)-len(ext)], MaxName-len(ext)) + ext
	}
	return strings.TrimRight(name, ". ")
}

// extension is the name's last ".ext", as path.Ext.
func extension(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[i:]
	}
	return ""
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// AttachmentNameKey is the key under which two attachment names are the
// same file on a case-insensitive file system (NTFS, APFS by default): an
// envelope's names must have distinct keys.
func AttachmentNameKey(name string) string {
	return strings.ToLower(strings.ToUpper(name))
}
