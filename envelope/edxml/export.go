package edxml

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/docaxis/docaxis/envelope"
)

// OpenFunc returns the bytes of an envelope attachment, e.g. from the
// attachment store (checking its SHA-256 as it streams).
type OpenFunc func(a envelope.Attachment) (io.ReadCloser, error)

// extraReader reads Envelope.Extra back, keeping the first error.
type extraReader struct {
	m   map[string]string
	err error
}

func (x *extraReader) fail(key string, err error) {
	if x.err == nil {
		x.err = fmt.Errorf("edxml: %w: %s: %w", ErrExtra, key, err)
	}
}

// docDate reads a date of envelope.Document (YYYY-MM-DD).
func (x *extraReader) docDate(field, s string) Date {
	d, _, err := parseDate(s)
	if err != nil && x.err == nil {
		x.err = fmt.Errorf("edxml: envelope document %s: %w", field, err)
	}
	return d
}

func (x *extraReader) str(key string) string { return x.m[key] }

func (x *extraReader) json(key string, v any) bool {
	s, ok := x.m[key]
	if !ok {
		return false
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		x.fail(key, err)
		return false
	}
	return true
}

func (x *extraReader) date(key, s string) Date {
	d, _, err := parseDate(s)
	if err != nil {
		x.fail(key, err)
	}
	return d
}

func (x *extraReader) timestamp(key, s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		x.fail(key, err)
		return time.Time{}
	}
	return t.In(Vietnam)
}

func (x *extraReader) from(code string) Organization {
	return Organization{
		OrganID:       code,
		OrganName:     x.str(KeyFromOrganName),
		OrganInCharge: x.str(KeyFromOrganInCharge),
		OrganAdd:      x.str(KeyFromOrganAdd),
		Email:         x.str(KeyFromEmail),
		Telephone:     x.str(KeyFromTelephone),
		Fax:           x.str(KeyFromFax),
		Website:       x.str(KeyFromWebsite),
	}
}

func (x *extraReader) trace(key string) ([]TraceHeader, bool) {
	var list []traceJSON
	if !x.json(key, &list) {
		return nil, false
	}
	out := make([]TraceHeader, len(list))
	for i, t := range list {
		out[i] = TraceHeader{OrganID: t.OrganID, Timestamp: x.timestamp(key, t.Timestamp)}
	}
	return out, true
}

func (x *extraReader) extensions() []Extension {
	var list []extensionJSON
	x.json(KeyExtensions, &list)
	out := make([]Extension, len(list))
	for i, e := range list {
		out[i] = Extension(e)
	}
	return out
}

// DocumentFromEnvelope builds the edXML document message of a document,
// revoke, update or replace envelope, taking back from Extra what an import
// put there. open gives attachment bytes when the document is written; the
// attachment named OriginalName (the file an import came from) is left out.
func DocumentFromEnvelope(e *envelope.Envelope, open OpenFunc) (*Document, error) {
	if e == nil {
		return nil, fmt.Errorf("edxml: %w: nil envelope", ErrKind)
	}
	docType, err := docTypeOf(e.Kind)
	if err != nil {
		return nil, fmt.Errorf("edxml: envelope %s: %w", e.ID, err)
	}
	x := &extraReader{m: e.Extra}
	doc := e.Document
	if doc == nil {
		doc = &envelope.Document{}
	}
	h := MessageHeader{
		From:             x.from(e.From),
		Code:             Code{CodeNumber: doc.CodeNumber, CodeNotation: doc.CodeNotation},
		PromulgationInfo: PromulgationInfo{Place: doc.PromulgationPlace, PromulgationDate: x.docDate("promulgation_date", doc.PromulgationDate)},
		DocumentType:     DocumentType{Type: doc.Type, TypeName: doc.TypeName},
		Subject:          e.Subject,
		Content:          e.Body,
		DueDate:          x.docDate("due_date", doc.DueDate),
		SteeringType:     doc.SteeringType,
		DocumentID:       firstOf(doc.DocumentID, e.ID),
		OtherInfo: OtherInfo{
			Priority:             doc.Priority,
			SphereOfPromulgation: x.str(KeyOtherSphereOfPromulgation),
			TyperNotation:        x.str(KeyOtherTyperNotation),
			PromulgationAmount:   x.str(KeyOtherPromulgationAmount),
			PageAmount:           x.str(KeyOtherPageAmount),
		},
	}
	if s := doc.Signer; s != nil {
		h.SignerInfo = SignerInfo{Competence: s.Competence, Position: s.Position, FullName: s.FullName}
	}
	x.json(KeyOtherAppendixes, &h.OtherInfo.Appendixes)
	x.json(KeyToPlaces, &h.ToPlaces)

	// To details are matched by code, so that they follow the recipients
	// even if the list was reordered.
	var details []orgJSON
	x.json(KeyTo, &details)
	byCode := make(map[string][]orgJSON)
	for _, d := range details {
		byCode[d.OrganID] = append(byCode[d.OrganID], d)
	}
	for _, code := range e.To {
		o := Organization{OrganID: code}
		if q := byCode[code]; len(q) > 0 {
			o, byCode[code] = Organization(q[0]), q[1:]
		}
		h.To = append(h.To, o)
	}

	var rfs []responseForJSON
	if x.json(KeyResponseFor, &rfs) {
		for _, r := range rfs {
			h.ResponseFor = append(h.ResponseFor, ResponseFor{
				OrganID: r.OrganID, Code: r.Code, DocumentID: r.DocumentID,
				PromulgationDate: x.date(KeyResponseFor, r.PromulgationDate),
			})
		}
	} else if doc.InReplyTo != "" {
		h.ResponseFor = []ResponseFor{{DocumentID: doc.InReplyTo}}
	}

	tl := TraceHeaderList{Bussiness: Bussiness{
		BussinessDocType:   docType,
		BussinessDocReason: e.Reason,
		DocumentID:         e.Refers,
		Paper:              x.str(KeyBussinessPaper),
		StaffInfo: StaffInfo{
			Department: x.str(KeyBussinessStaffDepartment),
			Staff:      x.str(KeyBussinessStaff),
			Mobile:     x.str(KeyBussinessStaffMobile),
			Email:      x.str(KeyBussinessStaffEmail),
		},
		BussinessDocumentInfo: BussinessDocumentInfo{
			DocumentInfo:     x.str(KeyBussinessDocumentInfo),
			DocumentReceiver: x.str(KeyBussinessDocumentReceiver),
		},
	}}
	b := &tl.Bussiness
	if id, ok := e.Extra[KeyBussinessDocumentID]; ok {
		b.DocumentID = id
	}
	var receivers []receiverJSON
	x.json(KeyBussinessReceivers, &receivers)
	for _, r := range receivers {
		b.BussinessDocumentInfo.ReceiverList = append(b.BussinessDocumentInfo.ReceiverList, Receiver(r))
	}
	var repl []replacementJSON
	if x.json(KeyBussinessReplacements, &repl) {
		for _, r := range repl {
			b.ReplacementInfoList = append(b.ReplacementInfoList, ReplacementInfo{DocumentID: r.DocumentID, OrganIDList: r.OrganIDs})
		}
	} else if e.Kind == envelope.KindReplace {
		b.ReplacementInfoList = []ReplacementInfo{{DocumentID: e.Refers, OrganIDList: append([]string(nil), e.To...)}}
	}
	if list, ok := x.trace(KeyTrace); ok {
		tl.TraceHeader = list
	} else {
		tl.TraceHeader = []TraceHeader{{OrganID: e.From, Timestamp: e.Created.In(Vietnam).Truncate(time.Second)}}
	}

	d := &Document{MessageHeader: h, TraceHeaderList: tl, Extensions: x.extensions()}
	var mapping []attachmentJSON
	x.json(KeyAttachments, &mapping)
	if x.err != nil {
		return nil, x.err
	}
	byName := make(map[string]attachmentJSON, len(mapping))
	for _, m := range mapping {
		byName[m.Name] = m
	}
	for i, a := range e.Attachments {
		if a.Name == OriginalName && a.MediaType == OriginalMediaType {
			continue
		}
		m := byName[a.Name]
		cid := firstOf(m.ContentID, contentID(e.ID, i, a))
		name := firstOf(m.AttachmentName, a.Name)
		a := a
		var openA func() (io.ReadCloser, error)
		if open != nil {
			openA = func() (io.ReadCloser, error) { return open(a) }
		}
		d.Manifest = append(d.Manifest, Reference{
			Href: cid, ContentID: cid, ContentType: a.MediaType, AttachmentName: name, Description: a.Description,
		})
		d.Attachments = append(d.Attachments, Attachment{
			ContentID: cid, AttachmentName: name, ContentType: a.MediaType, Size: a.Size, Open: openA,
		})
	}
	return d, nil
}

// contentID derives a stable edXML content id for an attachment that never
// had one, so that writing the same envelope twice gives the same bytes.
func contentID(envelopeID string, i int, a envelope.Attachment) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d\x00%s\x00%s", envelopeID, i, a.Name, a.SHA256)))
	h := hex.EncodeToString(sum[:16])
	return "cid:" + h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// StatusFromEnvelope builds the edXML status message of a status envelope.
// Only states with an edXML code (01-06, 13, 15, 16) can be written.
func StatusFromEnvelope(e *envelope.Envelope) (*Status, error) {
	if e == nil || e.Kind != envelope.KindStatus || e.Status == nil {
		kind := envelope.Kind("")
		if e != nil {
			kind = e.Kind
		}
		return nil, fmt.Errorf("edxml: %w %q: want a status envelope with a status", ErrKind, kind)
	}
	code := e.Status.State.Code()
	if code == "" {
		return nil, fmt.Errorf("edxml: envelope %s: %w: state %q has no edXML status code", e.ID, ErrUnknownStatus, e.Status.State)
	}
	x := &extraReader{m: e.Extra}
	h := StatusHeader{
		From: x.from(e.From),
		ResponseFor: ResponseFor{
			Code:             x.str(KeyResponseForCode),
			PromulgationDate: x.date(KeyResponseForPromulgationDate, x.str(KeyResponseForPromulgationDate)),
			DocumentID:       e.Status.Of,
		},
		StatusCode:  code,
		Description: firstOf(e.Status.Note, e.Status.Reason),
		Timestamp:   e.Created.In(Vietnam).Truncate(time.Second),
	}
	if len(e.To) > 0 {
		h.ResponseFor.OrganID = e.To[0]
	}
	if id, ok := e.Extra[KeyResponseForDocumentID]; ok {
		h.ResponseFor.DocumentID = id
	}
	if st := e.Status.Staff; st != nil {
		h.StaffInfo = StaffInfo{Department: st.Department, Staff: st.Name, Mobile: st.Phone, Email: st.Email}
	}
	s := &Status{MessageHeader: h, Extensions: x.extensions()}
	if list, ok := x.trace(KeyTrace); ok {
		s.TraceHeaderList.TraceHeader = list
	}
	if x.err != nil {
		return nil, x.err
	}
	return s, nil
}

// Write writes e as an edXML message: a status message for a status
// envelope, a document message otherwise. Attachment bytes come from open
// and are base64-encoded as they stream. No XML signature is written (see
// the package documentation).
func Write(w io.Writer, e *envelope.Envelope, open OpenFunc) error {
	if e != nil && e.Kind == envelope.KindStatus {
		s, err := StatusFromEnvelope(e)
		if err != nil {
			return err
		}
		return WriteStatus(w, s)
	}
	d, err := DocumentFromEnvelope(e, open)
	if err != nil {
		return err
	}
	return WriteDocument(w, d)
}
