package envelope

import (
	"errors"
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Limits on an envelope's content. The wire form must fit in one NATS
// message (1 MiB with headers) with room for the signature and chain.
const (
	MaxSubject     = 2000      // bytes
	MaxBody        = 256 << 10 // bytes
	MaxRecipients  = 1000
	MaxAttachments = 500
	MaxField       = 4096
)

// ErrInvalid is matched (errors.Is) by every validation error.
var ErrInvalid = errors.New("invalid envelope")

// ValidationError names the field that is wrong.
type ValidationError struct {
	Field  string
	Reason string
	Err    error // underlying cause, if any
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("invalid envelope: %s: %s", e.Field, e.Reason)
}

// Is makes errors.Is(err, ErrInvalid) and the cause's sentinels match.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func (e *ValidationError) Unwrap() error { return e.Err }

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// ValidateOption adjusts Validate.
type ValidateOption func(*validateOptions)

type validateOptions struct {
	extra func(code string) bool
}

// AllowCodes accepts non-standard agency codes for which known returns true
// (codes an operator registered explicitly).
func AllowCodes(known func(code string) bool) ValidateOption {
	return func(o *validateOptions) { o.extra = known }
}

var hexSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Validate checks e and returns the first problem as a *ValidationError.
func (e *Envelope) Validate(opts ...ValidateOption) error {
	var o validateOptions
	for _, opt := range opts {
		opt(&o)
	}
	checkCode := func(field, code string) error {
		if IsStandardCode(code) {
			return nil
		}
		if o.extra != nil && CheckNonStandardCode(code) == nil && o.extra(code) {
			return nil
		}
		err := CheckCode(code)
		return &ValidationError{Field: field, Reason: err.Error(), Err: err}
	}
	if e == nil {
		return invalid("envelope", "missing")
	}
	if !IsID(e.ID) {
		return invalid("id", "%q is not a UUID in canonical form", e.ID)
	}
	if !e.Kind.Valid() {
		return invalid("kind", "unknown kind %q", e.Kind)
	}
	if err := checkCode("from", e.From); err != nil {
		return err
	}
	if len(e.To) == 0 {
		return invalid("to", "no recipients")
	}
	if len(e.To) > MaxRecipients {
		return invalid("to", "%d recipients, at most %d", len(e.To), MaxRecipients)
	}
	seen := make(map[string]bool, len(e.To))
	for i, to := range e.To {
		field := fmt.Sprintf("to[%d]", i)
		if err := checkCode(field, to); err != nil {
			return err
		}
		if seen[to] {
			return invalid(field, "duplicate recipient %s", to)
		}
		seen[to] = true
		if to == e.From && e.Kind != KindStatus {
			return invalid(field, "addressed to itself (%s)", to)
		}
	}
	if e.Created.IsZero() {
		return invalid("created", "missing")
	}
	if e.Created.After(time.Now().Add(10 * time.Minute)) {
		return invalid("created", "%s is in the future", e.Created.Format(time.RFC3339))
	}
	if e.Subject == "" {
		return invalid("subject", "empty")
	}
	if len(e.Subject) > MaxSubject {
		return invalid("subject", "%d bytes, at most %d", len(e.Subject), MaxSubject)
	}
	if !utf8.ValidString(e.Subject) {
		return invalid("subject", "not valid UTF-8")
	}
	if len(e.Body) > MaxBody {
		return invalid("body", "%d bytes, at most %d", len(e.Body), MaxBody)
	}
	if !utf8.ValidString(e.Body) {
		return invalid("body", "not valid UTF-8")
	}
	// JSON encoding would silently replace invalid UTF-8 with U+FFFD, so the
	// signed bytes would say something else than the sender's envelope.
	if field := invalidText(e); field != "" {
		return invalid(field, "not valid UTF-8")
	}
	// The signed JSON must read the same to every JSON reader: keys that
	// differ only in case would be one field to some.
	if len(e.Extra) > 1 {
		folded := make(map[string]string, len(e.Extra))
		for k := range e.Extra {
			if prev, ok := folded[foldKey(k)]; ok {
				return invalid("extra", "keys %q and %q differ only in case", min(prev, k), max(prev, k))
			}
			folded[foldKey(k)] = k
		}
	}
	switch e.Kind {
	case KindRevoke, KindUpdate, KindReplace:
		if !IsID(e.Refers) {
			return invalid("refers", "%s needs the id of the envelope it acts on, got %q", e.Kind, e.Refers)
		}
	case KindStatus:
		if e.Status == nil {
			return invalid("status", "missing in a status envelope")
		}
		if !IsID(e.Status.Of) {
			return invalid("status.of", "%q is not an envelope id", e.Status.Of)
		}
		if !e.Status.State.Valid() {
			return invalid("status.state", "unknown state %q", e.Status.State)
		}
		if e.Status.Digest != "" && !hexSHA256.MatchString(e.Status.Digest) {
			return invalid("status.digest", "%q is not 64 lower-case hex digits", e.Status.Digest)
		}
		if len(e.To) != 1 {
			return invalid("to", "a status goes to exactly one agency, got %d", len(e.To))
		}
	}
	if e.Kind != KindStatus && e.Status != nil {
		return invalid("status", "only status envelopes carry a status")
	}
	if len(e.Attachments) > MaxAttachments {
		return invalid("attachments", "%d attachments, at most %d", len(e.Attachments), MaxAttachments)
	}
	names := make(map[string]string, len(e.Attachments)) // folded -> as given
	for i, a := range e.Attachments {
		field := fmt.Sprintf("attachments[%d]", i)
		if err := CheckAttachmentName(a.Name); err != nil {
			return &ValidationError{Field: field + ".name", Reason: err.Error(), Err: err}
		}
		// Names that differ only in case are one file where the recipient
		// saves them on Windows or macOS: the second would overwrite the first.
		if prev, ok := names[AttachmentNameKey(a.Name)]; ok {
			if prev == a.Name {
				return invalid(field+".name", "duplicate name %q", a.Name)
			}
			return invalid(field+".name", "%q and %q differ only in case (one file on Windows and macOS)", prev, a.Name)
		}
		names[AttachmentNameKey(a.Name)] = a.Name
		if a.Size < 0 {
			return invalid(field+".size", "negative")
		}
		if !hexSHA256.MatchString(a.SHA256) {
			return invalid(field+".sha256", "%q is not 64 lower-case hex digits", a.SHA256)
		}
		if a.Key == "" {
			return invalid(field+".key", "missing storage key")
		}
		if len(a.Key) > MaxField {
			return invalid(field+".key", "%d bytes, at most %d", len(a.Key), MaxField)
		}
	}
	return nil
}

// IsID reports whether s is an envelope id: a UUID in canonical form, the
// only form that matches as a dedup and lookup key (uuid.Parse also accepts
// braces, URNs and missing dashes).
func IsID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}

// invalidText returns the JSON name of the first free-text field of e that
// is not valid UTF-8, or "". Subject and body are checked separately.
func invalidText(e *Envelope) string {
	type field struct{ name, v string }
	check := func(fs ...field) string {
		for _, f := range fs {
			if !utf8.ValidString(f.v) {
				return f.name
			}
		}
		return ""
	}
	if f := check(field{"reason", e.Reason}); f != "" {
		return f
	}
	if d := e.Document; d != nil {
		if f := check(field{"document.code_number", d.CodeNumber}, field{"document.code_notation", d.CodeNotation},
			field{"document.promulgation_place", d.PromulgationPlace}, field{"document.promulgation_date", d.PromulgationDate},
			field{"document.type", d.Type}, field{"document.type_name", d.TypeName}, field{"document.due_date", d.DueDate},
			field{"document.steering_type", d.SteeringType}, field{"document.priority", d.Priority},
			field{"document.in_reply_to", d.InReplyTo}, field{"document.document_id", d.DocumentID}); f != "" {
			return f
		}
		if sg := d.Signer; sg != nil {
			if f := check(field{"document.signer.competence", sg.Competence}, field{"document.signer.position", sg.Position},
				field{"document.signer.full_name", sg.FullName}); f != "" {
				return f
			}
		}
	}
	if st := e.Status; st != nil {
		if f := check(field{"status.reason", st.Reason}, field{"status.note", st.Note}); f != "" {
			return f
		}
		if sf := st.Staff; sf != nil {
			if f := check(field{"status.staff.department", sf.Department}, field{"status.staff.name", sf.Name},
				field{"status.staff.email", sf.Email}, field{"status.staff.phone", sf.Phone}); f != "" {
				return f
			}
		}
	}
	for i, a := range e.Attachments {
		if !utf8.ValidString(a.MediaType) {
			return fmt.Sprintf("attachments[%d].media_type", i)
		}
		if !utf8.ValidString(a.Description) {
			return fmt.Sprintf("attachments[%d].description", i)
		}
	}
	for k, v := range e.Extra {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return "extra"
		}
	}
	return ""
}
