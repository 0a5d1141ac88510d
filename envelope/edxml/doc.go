// Package edxml reads and writes edXML (QCVN 102:2016/BTTTT), the message
// format Vietnamese state agencies already exchange, and maps it to and from
// docaxis envelopes.
//
// # Reading
//
// Parse (or ParseReaderAt for files) reads a document or status message
// into typed structures that mirror the edXML elements. It is tolerant
// where real files are messy: a BOM or stray bytes before the XML, CRLF,
// comments, empty elements, any namespace prefix or none, a few
// misspellings of element names, agency codes outside the standard format,
// unknown elements (kept as Extensions). What it tolerates is listed in
// Message.Warnings. What it cannot read is a *ParseError naming the element
// path and line, matching one of the Err* sentinels.
//
// Attachment content is never held in memory: Parse checks the base64 as it
// streams by and records where it is; Attachment.Open decodes it from the
// input on demand. No other text is held whole before its limit is checked
// either: encoding/xml reads markup only, text is read in pieces beside it,
// so memory stays a small constant whatever the file's size (ParseReaderAt;
// Parse itself holds the input).
//
// # Converting
//
// ToEnvelope, StatusToEnvelope and Import turn a parsed message into an
// envelope; DocumentFromEnvelope, StatusFromEnvelope and Write go back.
// Header fields with a home in envelope.Envelope or envelope.Document go
// there; every other one goes into Envelope.Extra under the Key* constants
// below, so that importing, exporting and importing again gives the same
// value for every header field. Lists and structures are stored as JSON;
// dates in Extra are YYYY-MM-DD and timestamps RFC 3339 in UTC, like the
// rest of the envelope. edXML itself has dates and times without a zone,
// in Vietnam time (UTC+7): they are converted on the way in and out.
//
// Where each edXML field goes:
//
//	From/OrganId                       Envelope.From
//	From/{OrganName,...,Website}       Extra edxml.from.*
//	To/OrganId                         Envelope.To
//	To/{OrganName,...}                 Extra edxml.to (JSON list, matched to To by organ_id)
//	Code/CodeNumber, CodeNotation      Document.CodeNumber, CodeNotation
//	PromulgationInfo/Place, Date       Document.PromulgationPlace, PromulgationDate
//	DocumentType/Type, TypeName        Document.Type, TypeName
//	Subject                            Envelope.Subject
//	Content                            Envelope.Body
//	SignerInfo                         Document.Signer
//	DueDate                            Document.DueDate
//	ToPlaces/Place                     Extra edxml.to_places (JSON list)
//	OtherInfo/Priority                 Document.Priority
//	OtherInfo/other fields             Extra edxml.other.*
//	ResponseFor (list)                 Extra edxml.response_for (JSON); the first DocumentId also in Document.InReplyTo
//	SteeringType                       Document.SteeringType
//	DocumentId                         Document.DocumentID
//	TraceHeaderList/TraceHeader        Extra edxml.trace (JSON); Envelope.Created from it
//	Bussiness/BussinessDocType         Envelope.Kind
//	Bussiness/BussinessDocReason       Envelope.Reason
//	Bussiness/DocumentId               Envelope.Refers (when a UUID or resolved); Extra edxml.bussiness.document_id whenever it differs from Refers
//	Bussiness/other fields             Extra edxml.bussiness.*
//	unknown elements                   Extra edxml.extensions (JSON)
//	Attachment ContentId, names        Extra edxml.attachments (JSON)
//
// Revoke, update and replace messages name the document they act on by
// its edXML DocumentId: ImportOptions.ResolveRef maps it to the envelope it
// was imported as; without a mapping a UUID is taken as the envelope id and
// anything else leaves Refers empty (with a warning) for the caller to fill.
// Duplicate recipients are addressed once.
//
// For a status message:
//
//	From                               as above
//	ResponseFor/OrganId                Envelope.To[0] (the sender of the document)
//	ResponseFor/DocumentId             Status.Of (when a UUID or resolved); Extra edxml.response_for.document_id whenever it differs from Of
//	ResponseFor/Code, PromulgationDate Extra edxml.response_for.*
//	StaffInfo                          Status.Staff (Staff -> Name, Mobile -> Phone)
//	StatusCode                         Status.State (01 delivered ... 16 recall-refused)
//	Description                        Status.Note
//	Timestamp                          Envelope.Created
//
// The XML signature of an imported file signs the original bytes, which a
// re-serialisation cannot reproduce: keep the original (Message.Original,
// ImportOptions.KeepOriginal) to check it. Write never emits a signature.
package edxml

// Namespace is the edXML namespace of QCVN 102:2016.
const Namespace = "http://www.mic.gov.vn/TBT/QCVN_102_2016"

// Original file attachment: the name and media type under which Import
// stores the file as received (see Message.Original), and which Write
// leaves out of the attachments it writes.
const (
	OriginalName      = "original.edxml"
	OriginalMediaType = "application/xml"
)

// Keys of Envelope.Extra. A key is absent when the file had nothing for it;
// a list key holding "[]" records that the file had an empty list, where
// Write would otherwise make one up (e.g. a trace header).
const (
	KeyFromOrganName     = "edxml.from.organ_name"
	KeyFromOrganInCharge = "edxml.from.organ_in_charge"
	KeyFromOrganAdd      = "edxml.from.organ_add"
	KeyFromEmail         = "edxml.from.email"
	KeyFromTelephone     = "edxml.from.telephone"
	KeyFromFax           = "edxml.from.fax"
	KeyFromWebsite       = "edxml.from.website"

	// KeyTo: JSON list of {organ_id, organ_in_charge, organ_name, organ_add,
	// email, telephone, fax, website}, one per To that has more than a code.
	KeyTo = "edxml.to"
	// KeyToPlaces: JSON list of strings.
	KeyToPlaces = "edxml.to_places"

	KeyOtherSphereOfPromulgation = "edxml.other.sphere_of_promulgation"
	KeyOtherTyperNotation        = "edxml.other.typer_notation"
	KeyOtherPromulgationAmount   = "edxml.other.promulgation_amount"
	KeyOtherPageAmount           = "edxml.other.page_amount"
	// KeyOtherAppendixes: JSON list of strings.
	KeyOtherAppendixes = "edxml.other.appendixes"

	// KeyResponseFor: JSON list of {organ_id, code, promulgation_date,
	// document_id} (document messages).
	KeyResponseFor = "edxml.response_for"
	// Status messages have one ResponseFor, kept flat.
	KeyResponseForCode             = "edxml.response_for.code"
	KeyResponseForPromulgationDate = "edxml.response_for.promulgation_date"
	KeyResponseForDocumentID       = "edxml.response_for.document_id"

	// KeyTrace: JSON list of {organ_id, timestamp}.
	KeyTrace = "edxml.trace"

	KeyBussinessDocumentID       = "edxml.bussiness.document_id"
	KeyBussinessPaper            = "edxml.bussiness.paper"
	KeyBussinessStaffDepartment  = "edxml.bussiness.staff.department"
	KeyBussinessStaff            = "edxml.bussiness.staff.staff"
	KeyBussinessStaffMobile      = "edxml.bussiness.staff.mobile"
	KeyBussinessStaffEmail       = "edxml.bussiness.staff.email"
	KeyBussinessDocumentInfo     = "edxml.bussiness.document_info"
	KeyBussinessDocumentReceiver = "edxml.bussiness.document_receiver"
	// KeyBussinessReceivers: JSON list of {receiver_type, organ_id}.
	KeyBussinessReceivers = "edxml.bussiness.receivers"
	// KeyBussinessReplacements: JSON list of {document_id, organ_ids}.
	KeyBussinessReplacements = "edxml.bussiness.replacements"

	// KeyAttachments: JSON list of {name, content_id, attachment_name}: the
	// edXML content id of each envelope attachment, and its edXML name when
	// the envelope name had to differ.
	KeyAttachments = "edxml.attachments"
	// KeyExtensions: JSON list of {parent, xml} (see Extension).
	KeyExtensions = "edxml.extensions"
)
