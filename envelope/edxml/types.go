package edxml

import (
	"fmt"
	"io"
	"time"

	"github.com/docaxis/docaxis/envelope"
)

// The types below mirror the edXML message structure of QCVN 102:2016/BTTTT,
// one Go field per element, named after the element (Id spelled ID). Values
// are the element text with surrounding white space removed; an absent and
// an empty element both read as the zero value.

// Organization is a From or To element.
type Organization struct {
	OrganID string // OrganId: agency code, e.g. 000.00.00.G22
	// OrganInCharge is OrganizationInCharge, the supervising body (the
	// spelling of the samples; OrganInCharge is read too).
	OrganInCharge string
	OrganName     string
	OrganAdd      string // address
	Email         string
	Telephone     string
	Fax           string
	Website       string
}

// Code is the document's number and notation (so/ky hieu).
type Code struct {
	CodeNumber   string
	CodeNotation string
}

// PromulgationInfo is where and when the document was issued.
type PromulgationInfo struct {
	Place            string
	PromulgationDate Date
}

// DocumentType is the document type code and name.
type DocumentType struct {
	Type     string
	TypeName string
}

// SignerInfo is the official who signed the paper document.
type SignerInfo struct {
	Competence string
	Position   string
	FullName   string
}

// OtherInfo holds the remaining document metadata. Counts stay strings so
// that whatever a file says survives a round trip.
type OtherInfo struct {
	Priority             string
	SphereOfPromulgation string
	TyperNotation        string
	PromulgationAmount   string
	PageAmount           string
	Appendixes           []string // Appendixes/Appendix
}

// ResponseFor names a document this message answers.
type ResponseFor struct {
	OrganID          string
	Code             string
	PromulgationDate Date
	DocumentID       string
}

// MessageHeader is the header of a document message.
type MessageHeader struct {
	From             Organization
	To               []Organization
	Code             Code
	PromulgationInfo PromulgationInfo
	DocumentType     DocumentType
	Subject          string
	Content          string
	SignerInfo       SignerInfo
	DueDate          Date
	ToPlaces         []string // ToPlaces/Place
	OtherInfo        OtherInfo
	ResponseFor      []ResponseFor
	SteeringType     string
	DocumentID       string
}

// TraceHeader is one hop: an agency and when it handled the message.
type TraceHeader struct {
	OrganID   string
	Timestamp time.Time // in Vietnam
}

// StaffInfo is the clerk who handled a message.
type StaffInfo struct {
	Department string
	Staff      string
	Mobile     string
	Email      string
}

// Receiver is one entry of BussinessDocumentInfo/ReceiverList.
type Receiver struct {
	ReceiverType string
	OrganID      string
}

// BussinessDocumentInfo says, for an update, what changed (DocumentInfo)
// and for whom (DocumentReceiver, ReceiverList).
type BussinessDocumentInfo struct {
	DocumentInfo     string
	DocumentReceiver string
	ReceiverList     []Receiver
}

// ReplacementInfo names a replaced document and the agencies it went to.
type ReplacementInfo struct {
	DocumentID  string
	OrganIDList []string // OrganIdList/OrganId
}

// BussinessDocType is the business kind of a document message. edXML spells
// Bussiness with a double s; so do these names.
type BussinessDocType int

const (
	DocNew     BussinessDocType = 0
	DocRevoke  BussinessDocType = 1
	DocUpdate  BussinessDocType = 2
	DocReplace BussinessDocType = 3
)

// Kind returns the envelope kind of t.
func (t BussinessDocType) Kind() envelope.Kind {
	switch t {
	case DocRevoke:
		return envelope.KindRevoke
	case DocUpdate:
		return envelope.KindUpdate
	case DocReplace:
		return envelope.KindReplace
	}
	return envelope.KindDocument
}

func docTypeOf(k envelope.Kind) (BussinessDocType, error) {
	switch k {
	case envelope.KindDocument:
		return DocNew, nil
	case envelope.KindRevoke:
		return DocRevoke, nil
	case envelope.KindUpdate:
		return DocUpdate, nil
	case envelope.KindReplace:
		return DocReplace, nil
	}
	return 0, fmt.Errorf("%w %q: want document, revoke, update or replace", ErrKind, k)
}

// Bussiness is TraceHeaderList/Bussiness: the business kind of a document
// message and, for revoke, update and replace, what it acts on.
type Bussiness struct {
	DocumentID            string // the document acted on
	BussinessDocType      BussinessDocType
	BussinessDocReason    string
	Paper                 string // 1 when a paper copy is also sent
	StaffInfo             StaffInfo
	BussinessDocumentInfo BussinessDocumentInfo
	ReplacementInfoList   []ReplacementInfo
}

// TraceHeaderList is the route of a message and its business kind.
type TraceHeaderList struct {
	TraceHeader []TraceHeader
	Bussiness   Bussiness
}

// Reference is one edXMLBody/edXMLManifest/Reference: the description of an
// attachment.
type Reference struct {
	Href           string // xlink:href attribute
	ContentID      string
	ContentType    string
	AttachmentName string
	Description    string
}

// Attachment is one AttachmentEncoded/Attachment.
type Attachment struct {
	ContentID      string
	AttachmentName string
	ContentType    string
	Description    string // not in the standard, written by some producers
	// Size is the decoded size in bytes, -1 when unknown.
	Size int64
	// Err is set by Parse when ContentTransferEncoded is not base64; Open
	// then returns it. The message itself stays readable.
	Err error
	// Open returns the decoded content. Parse sets it to stream from the
	// parsed input; set it yourself to write a Document.
	Open func() (io.ReadCloser, error)
	// Line is the line of the Attachment element in the parsed file.
	Line int
}

// Extension is an element this package does not know, found inside a known
// one. It is kept, re-serialised without namespace prefixes, so that it can
// be written back at the same place.
type Extension struct {
	// Parent is the path of the known parent from edXMLEnvelope, with
	// canonical element names and [n] for the n-th repeated element when
	// n > 1, e.g. edXMLEnvelope/edXMLHeader/MessageHeader/DocumentType.
	Parent string
	XML    string
}

// Document is a document message.
type Document struct {
	MessageHeader   MessageHeader
	TraceHeaderList TraceHeaderList
	// Signature is the XML digital signature element exactly as it was in
	// the file (nil when there was none). It signs the original bytes: keep
	// those (Message.Original) to check it.
	Signature   []byte
	Manifest    []Reference
	Attachments []Attachment
	Extensions  []Extension
}

// StatusHeader is the header of a status message.
type StatusHeader struct {
	From        Organization
	ResponseFor ResponseFor
	StaffInfo   StaffInfo
	// StatusCode is the two-digit edXML code (01-06, 13, 15, 16); Parse
	// normalises "5" to "05".
	StatusCode  string
	Description string
	Timestamp   time.Time // in Vietnam
}

// Status is a status message.
type Status struct {
	MessageHeader   StatusHeader
	TraceHeaderList TraceHeaderList
	Signature       []byte
	Extensions      []Extension
}

// State returns the envelope state of s's StatusCode.
func (s *Status) State() (envelope.State, error) { return stateOf(s.MessageHeader.StatusCode) }

func stateOf(code string) (envelope.State, error) {
	st, err := envelope.ParseState(code)
	if err != nil || st.Code() == "" {
		return "", fmt.Errorf("%w %q: want 01-06, 13, 15 or 16", ErrUnknownStatus, code)
	}
	return st, nil
}
