package envelope

import (
	"time"

	"github.com/google/uuid"
)

// Kind says what an envelope is. Business kinds follow edXML's
// BussinessDocType: a new document, or a revoke, update or replace of an
// earlier one (named in Refers).
type Kind string

const (
	KindDocument Kind = "document" // edXML BussinessDocType 0 (new)
	KindRevoke   Kind = "revoke"   // 1: recall of an earlier envelope
	KindUpdate   Kind = "update"   // 2: new envelope updating an earlier one
	KindReplace  Kind = "replace"  // 3: new envelope replacing an earlier one
	KindStatus   Kind = "status"   // a receipt or business status
)

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindDocument, KindRevoke, KindUpdate, KindReplace, KindStatus:
		return true
	}
	return false
}

// Envelope is what one agency sends to others. It is signed once by the
// sender and travels unchanged to every recipient.
type Envelope struct {
	ID      string    `json:"id"`
	Kind    Kind      `json:"kind"`
	Refers  string    `json:"refers,omitempty"` // envelope acted on (revoke, update, replace)
	From    string    `json:"from"`
	To      []string  `json:"to"`
	Created time.Time `json:"created"`
	Subject string    `json:"subject"`
	// Reason explains a revoke, update or replace (edXML BussinessDocReason).
	Reason      string       `json:"reason,omitempty"`
	Document    *Document    `json:"document,omitempty"`
	Body        string       `json:"body,omitempty"`
	Attachments []Attachment `json:"attachments,omitempty"`
	Status      *Status      `json:"status,omitempty"`
	// Extra keeps fields of foreign formats (edXML) that have no field here,
	// so that a round trip loses nothing.
	Extra map[string]string `json:"extra,omitempty"`
}

// Document is a document's official metadata (edXML MessageHeader).
type Document struct {
	CodeNumber        string  `json:"code_number,omitempty"`
	CodeNotation      string  `json:"code_notation,omitempty"`
	PromulgationPlace string  `json:"promulgation_place,omitempty"`
	PromulgationDate  string  `json:"promulgation_date,omitempty"` // YYYY-MM-DD
	Type              string  `json:"type,omitempty"`
	TypeName          string  `json:"type_name,omitempty"`
	Signer            *Signer `json:"signer,omitempty"`
	DueDate           string  `json:"due_date,omitempty"` // YYYY-MM-DD
	SteeringType      string  `json:"steering_type,omitempty"`
	Priority          string  `json:"priority,omitempty"`
	InReplyTo         string  `json:"in_reply_to,omitempty"`
	DocumentID        string  `json:"document_id,omitempty"` // edXML DocumentId
}

// Signer is the official who signed the paper document (not the key holder).
type Signer struct {
	Competence string `json:"competence,omitempty"`
	Position   string `json:"position,omitempty"`
	FullName   string `json:"full_name,omitempty"`
}

// Attachment is one manifest entry. The bytes live in the attachment store
// under Key; SHA256 (hex) and Size are checked while they stream back.
type Attachment struct {
	Name        string `json:"name"`
	MediaType   string `json:"media_type"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	Key         string `json:"key"`
	Description string `json:"description,omitempty"`
}

// Staff identifies the person who set a status.
type Staff struct {
	Department string `json:"department,omitempty"`
	Name       string `json:"name,omitempty"`
	Email      string `json:"email,omitempty"`
	Phone      string `json:"phone,omitempty"`
}

// Status is the payload of a KindStatus envelope: a receipt or a business
// status about envelope Of, set by the envelope's From agency (the reporter)
// and addressed to the sender of Of.
type Status struct {
	Of    string `json:"of"`
	State State  `json:"state"`
	// Digest is the SHA-256 (hex) of the exact signed bytes received, in a
	// delivered or invalid receipt.
	Digest string `json:"digest,omitempty"`
	Reason string `json:"reason,omitempty"`
	Note   string `json:"note,omitempty"`
	Staff  *Staff `json:"staff,omitempty"`
	// Details carries verification results (e.g. PDF signatures) per attachment.
	Details map[string]any `json:"details,omitempty"`
}

// NewID returns a new time-ordered envelope id (UUID v7).
func NewID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// New returns a document envelope with a fresh id and creation time.
func New(from string, to []string, subject string) *Envelope {
	return &Envelope{
		ID:      NewID(),
		Kind:    KindDocument,
		From:    from,
		To:      append([]string(nil), to...),
		Created: time.Now().UTC().Truncate(time.Millisecond),
		Subject: subject,
	}
}

// NewStatus returns a status envelope from reporter to the sender of the
// envelope of.
func NewStatus(reporter, sender, of string, state State) *Envelope {
	return &Envelope{
		ID:      NewID(),
		Kind:    KindStatus,
		From:    reporter,
		To:      []string{sender},
		Created: time.Now().UTC().Truncate(time.Millisecond),
		Subject: "status " + string(state),
		Status:  &Status{Of: of, State: state},
	}
}
