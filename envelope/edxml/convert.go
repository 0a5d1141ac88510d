package edxml

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/docaxis/docaxis/envelope"
)

// ImportOptions adjust the conversion of a parsed message to an envelope.
// The zero value is usable.
type ImportOptions struct {
	// ID is the envelope id; empty for a new one.
	ID string
	// UseDocumentID takes the edXML DocumentId of a new document as the
	// envelope id when it is a UUID, so that later revoke, update, replace
	// and status messages naming it refer to the envelope without a lookup.
	UseDocumentID bool
	// ResolveRef maps an edXML DocumentId named by a revoke, update,
	// replace or status message to the envelope it was imported as. When it
	// is nil or does not know the id, a UUID is taken as the envelope id
	// itself and anything else leaves Refers (Status.Of) empty, the edXML
	// reference being kept in Extra.
	ResolveRef func(documentID string) (envelopeID string, ok bool)
	// Now gives Envelope.Created when the file has no timestamp
	// (default time.Now).
	Now func() time.Time
	// KeepOriginal makes Import also store the file as received, as
	// OriginalName, so that its XML signature stays checkable.
	KeepOriginal bool
	// Warn receives what the conversion had to adjust (renamed
	// attachments, unresolved references). Message.ToEnvelope appends to
	// Message.Warnings when Warn is nil.
	Warn func(msg string)
}

func (o *ImportOptions) warnf(format string, args ...any) {
	if o.Warn != nil {
		o.Warn(fmt.Sprintf(format, args...))
	}
}

func (o *ImportOptions) now() time.Time {
	if o.Now != nil {
		return o.Now().UTC()
	}
	return time.Now().UTC().Truncate(time.Millisecond)
}

// resolve maps an edXML DocumentId to an envelope id, or "".
func (o *ImportOptions) resolve(documentID string) string {
	if documentID == "" {
		return ""
	}
	if o.ResolveRef != nil {
		if id, ok := o.ResolveRef(documentID); ok {
			return id
		}
	}
	if isUUID(documentID) {
		return strings.ToLower(documentID)
	}
	return ""
}

func (o *ImportOptions) newID(documentID string, kind envelope.Kind) string {
	switch {
	case o.ID != "":
		return o.ID
	case o.UseDocumentID && kind == envelope.KindDocument && isUUID(documentID):
		return strings.ToLower(documentID)
	}
	return envelope.NewID()
}

// isUUID reports whether s is a UUID in canonical 8-4-4-4-12 form (any
// case).
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// AttachmentData is an attachment ready to be stored: the envelope name and
// media type it should get, and its decoded bytes.
type AttachmentData struct {
	Name        string // unique, safe as a file name (envelope.CheckAttachmentName)
	MediaType   string
	ContentID   string // edXML ContentId, "" for the original file
	Description string
	Size        int64 // decoded size, -1 when unknown
	open        func() (io.ReadCloser, error)
}

// Open returns a fresh reader of the decoded bytes; it can be called again,
// e.g. to retry a store. For content that is not base64 it returns the
// *ParseError found when parsing.
func (a AttachmentData) Open() (io.ReadCloser, error) {
	if a.open == nil {
		return io.NopCloser(strings.NewReader("")), nil
	}
	return a.open()
}

// Original returns the file exactly as it was given to Parse, BOM and stray
// bytes included, named OriginalName with media type OriginalMediaType. Its
// XML signature, if any, can only be checked on these bytes.
func (m *Message) Original() AttachmentData {
	src, size := m.src, m.size
	return AttachmentData{
		Name:        OriginalName,
		MediaType:   OriginalMediaType,
		Description: "edXML file as received",
		Size:        size,
		open: func() (io.ReadCloser, error) {
			return io.NopCloser(io.NewSectionReader(src, 0, size)), nil
		},
	}
}

// ToEnvelope converts m. A status message gives no attachments. When
// opts.Warn is nil, conversion warnings are appended to m.Warnings.
func (m *Message) ToEnvelope(opts ImportOptions) (*envelope.Envelope, []AttachmentData, error) {
	if opts.Warn == nil {
		opts.Warn = func(s string) {
			if len(m.Warnings) < 2*maxWarnings {
				m.Warnings = append(m.Warnings, s)
			}
		}
	}
	if m.status != nil {
		e, err := StatusToEnvelope(m.status, opts)
		return e, nil, err
	}
	return ToEnvelope(m.doc, opts)
}

// PutFunc stores one attachment and returns its manifest entry (SHA-256,
// size and store key filled in). Name, MediaType and Description are
// filled by Import when the callback leaves them empty.
type PutFunc func(name, mediaType string, r io.Reader) (envelope.Attachment, error)

// Import converts m to an envelope and stores its attachments with put,
// one at a time, streaming each from the parsed input; with
// opts.KeepOriginal the file as received is stored last. The envelope is
// not validated: the caller still sets what it knows (and may allow
// non-standard codes) before envelope.Validate.
func Import(m *Message, opts ImportOptions, put PutFunc) (*envelope.Envelope, error) {
	e, atts, err := m.ToEnvelope(opts)
	if err != nil {
		return nil, err
	}
	if opts.KeepOriginal {
		atts = append(atts, m.Original())
	}
	for _, a := range atts {
		ea, err := store(a, put)
		if err != nil {
			return nil, fmt.Errorf("edxml: storing attachment %q: %w", a.Name, err)
		}
		e.Attachments = append(e.Attachments, ea)
	}
	return e, nil
}

func store(a AttachmentData, put PutFunc) (envelope.Attachment, error) {
	rc, err := a.Open()
	if err != nil {
		return envelope.Attachment{}, err
	}
	defer rc.Close()
	ea, err := put(a.Name, a.MediaType, rc)
	if err != nil {
		return envelope.Attachment{}, err
	}
	if ea.Name == "" {
		ea.Name = a.Name
	}
	if ea.MediaType == "" {
		ea.MediaType = a.MediaType
	}
	if ea.Description == "" {
		ea.Description = a.Description
	}
	return ea, nil
}

// JSON forms of the Extra values.
type (
	orgJSON struct {
		OrganID       string `json:"organ_id"`
		OrganInCharge string `json:"organ_in_charge,omitempty"`
		OrganName     string `json:"organ_name,omitempty"`
		OrganAdd      string `json:"organ_add,omitempty"`
		Email         string `json:"email,omitempty"`
		Telephone     string `json:"telephone,omitempty"`
		Fax           string `json:"fax,omitempty"`
		Website       string `json:"website,omitempty"`
	}
	responseForJSON struct {
		OrganID          string `json:"organ_id,omitempty"`
		Code             string `json:"code,omitempty"`
		PromulgationDate string `json:"promulgation_date,omitempty"` // YYYY-MM-DD
		DocumentID       string `json:"document_id,omitempty"`
	}
	traceJSON struct {
		OrganID   string `json:"organ_id"`
		Timestamp string `json:"timestamp,omitempty"` // RFC 3339, UTC
	}
	receiverJSON struct {
		ReceiverType string `json:"receiver_type,omitempty"`
		OrganID      string `json:"organ_id,omitempty"`
	}
	replacementJSON struct {
		DocumentID string   `json:"document_id,omitempty"`
		OrganIDs   []string `json:"organ_ids,omitempty"`
	}
	attachmentJSON struct {
		Name           string `json:"name"`
		ContentID      string `json:"content_id,omitempty"`
		AttachmentName string `json:"attachment_name,omitempty"`
	}
	extensionJSON struct {
		Parent string `json:"parent"`
		XML    string `json:"xml"`
	}
)

// extra builds Envelope.Extra.
type extra map[string]string

func (x extra) set(key, v string) {
	if v != "" {
		x[key] = v
	}
}

// json stores v; HTML escaping off so that extension XML stays readable.
func (x extra) json(key string, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // only plain structs and strings: cannot fail
	x[key] = strings.TrimSuffix(b.String(), "\n")
}

func (x extra) from(o Organization) {
	x.set(KeyFromOrganName, o.OrganName)
	x.set(KeyFromOrganInCharge, o.OrganInCharge)
	x.set(KeyFromOrganAdd, o.OrganAdd)
	x.set(KeyFromEmail, o.Email)
	x.set(KeyFromTelephone, o.Telephone)
	x.set(KeyFromFax, o.Fax)
	x.set(KeyFromWebsite, o.Website)
}

func (x extra) extensions(exts []Extension) {
	if len(exts) == 0 {
		return
	}
	list := make([]extensionJSON, len(exts))
	for i, e := range exts {
		list[i] = extensionJSON(e)
	}
	x.json(KeyExtensions, list)
}

func (x extra) trace(list []TraceHeader) {
	out := make([]traceJSON, len(list))
	for i, t := range list {
		out[i] = traceJSON{OrganID: t.OrganID}
		if !t.Timestamp.IsZero() {
			out[i].Timestamp = t.Timestamp.UTC().Format(time.RFC3339)
		}
	}
	x.json(KeyTrace, out)
}

func (x extra) bussiness(b *Bussiness, kind envelope.Kind, refers string) {
	if b.DocumentID != refers {
		x[KeyBussinessDocumentID] = b.DocumentID
	}
	x.set(KeyBussinessPaper, b.Paper)
	x.set(KeyBussinessStaffDepartment, b.StaffInfo.Department)
	x.set(KeyBussinessStaff, b.StaffInfo.Staff)
	x.set(KeyBussinessStaffMobile, b.StaffInfo.Mobile)
	x.set(KeyBussinessStaffEmail, b.StaffInfo.Email)
	info := &b.BussinessDocumentInfo
	x.set(KeyBussinessDocumentInfo, info.DocumentInfo)
	x.set(KeyBussinessDocumentReceiver, info.DocumentReceiver)
	if len(info.ReceiverList) > 0 {
		list := make([]receiverJSON, len(info.ReceiverList))
		for i, r := range info.ReceiverList {
			list[i] = receiverJSON(r)
		}
		x.json(KeyBussinessReceivers, list)
	}
	// "[]" for a replace without a list, so that Write does not make one up.
	if len(b.ReplacementInfoList) > 0 || kind == envelope.KindReplace {
		list := make([]replacementJSON, len(b.ReplacementInfoList))
		for i, r := range b.ReplacementInfoList {
			list[i] = replacementJSON{DocumentID: r.DocumentID, OrganIDs: r.OrganIDList}
		}
		x.json(KeyBussinessReplacements, list)
	}
}

// ToEnvelope converts a document message. The envelope gets no Attachments
// manifest: store each AttachmentData (Import does) and append the entries.
func ToEnvelope(d *Document, opts ImportOptions) (*envelope.Envelope, []AttachmentData, error) {
	if d == nil {
		return nil, nil, fmt.Errorf("edxml: %w: no document message", ErrKind)
	}
	h := &d.MessageHeader
	b := &d.TraceHeaderList.Bussiness
	e := &envelope.Envelope{
		Kind:    b.BussinessDocType.Kind(),
		From:    h.From.OrganID,
		Subject: h.Subject,
		Body:    h.Content,
		Reason:  b.BussinessDocReason,
		Document: &envelope.Document{
			CodeNumber:        h.Code.CodeNumber,
			CodeNotation:      h.Code.CodeNotation,
			PromulgationPlace: h.PromulgationInfo.Place,
			PromulgationDate:  h.PromulgationInfo.PromulgationDate.ISO(),
			Type:              h.DocumentType.Type,
			TypeName:          h.DocumentType.TypeName,
			DueDate:           h.DueDate.ISO(),
			SteeringType:      h.SteeringType,
			Priority:          h.OtherInfo.Priority,
			DocumentID:        h.DocumentID,
		},
	}
	e.ID = opts.newID(h.DocumentID, e.Kind)
	if len(e.Body) > envelope.MaxBody {
		opts.warnf("Content is %d bytes, over the envelope body limit of %d", len(e.Body), envelope.MaxBody)
	}
	if s := h.SignerInfo; s != (SignerInfo{}) {
		e.Document.Signer = &envelope.Signer{Competence: s.Competence, Position: s.Position, FullName: s.FullName}
	}
	x := extra{}
	x.from(h.From)
	var details []orgJSON
	seen := make(map[string]bool, len(h.To))
	for _, t := range h.To {
		switch {
		case t.OrganID == "":
		case seen[t.OrganID]:
			// An envelope reaches each agency once.
			opts.warnf("recipient %s listed twice: addressed once", t.OrganID)
		default:
			seen[t.OrganID] = true
			e.To = append(e.To, t.OrganID)
		}
		if (t != Organization{OrganID: t.OrganID}) {
			details = append(details, orgJSON(t))
		}
	}
	if len(details) > 0 {
		x.json(KeyTo, details)
	}
	if len(h.ToPlaces) > 0 {
		x.json(KeyToPlaces, h.ToPlaces)
	}
	o := &h.OtherInfo
	x.set(KeyOtherSphereOfPromulgation, o.SphereOfPromulgation)
	x.set(KeyOtherTyperNotation, o.TyperNotation)
	x.set(KeyOtherPromulgationAmount, o.PromulgationAmount)
	x.set(KeyOtherPageAmount, o.PageAmount)
	if len(o.Appendixes) > 0 {
		x.json(KeyOtherAppendixes, o.Appendixes)
	}
	if len(h.ResponseFor) > 0 {
		e.Document.InReplyTo = h.ResponseFor[0].DocumentID
		list := make([]responseForJSON, len(h.ResponseFor))
		for i, r := range h.ResponseFor {
			list[i] = responseForJSON{OrganID: r.OrganID, Code: r.Code, PromulgationDate: r.PromulgationDate.ISO(), DocumentID: r.DocumentID}
		}
		x.json(KeyResponseFor, list)
	}
	// Always recorded, "[]" included: Write adds a trace header of its own
	// only for envelopes that never were edXML.
	x.trace(d.TraceHeaderList.TraceHeader)
	e.Created = created(d.TraceHeaderList.TraceHeader, e.From)
	if e.Created.IsZero() {
		e.Created = opts.now()
	}
	if e.Kind != envelope.KindDocument {
		ref, where := b.DocumentID, "Bussiness/DocumentId"
		if ref == "" && len(b.ReplacementInfoList) > 0 {
			ref, where = b.ReplacementInfoList[0].DocumentID, "ReplacementInfo/DocumentId"
		}
		if ref == "" && e.Kind != envelope.KindReplace {
			ref, where = h.DocumentID, "MessageHeader/DocumentId"
		}
		e.Refers = opts.resolve(ref)
		if e.Refers == "" {
			opts.warnf("%s: %s %q does not name a known envelope: Refers left empty", e.Kind, where, ref)
		}
	}
	x.bussiness(b, e.Kind, e.Refers)
	x.extensions(d.Extensions)
	atts, list := attachmentData(d, &opts)
	if len(list) > 0 {
		x.json(KeyAttachments, list)
	}
	e.Extra = x
	return e, atts, nil
}

// created is the time the sender handed the message on: its own trace
// header, else the first one.
func created(trace []TraceHeader, from string) time.Time {
	var first time.Time
	for _, t := range trace {
		if t.Timestamp.IsZero() {
			continue
		}
		if t.OrganID == from {
			return t.Timestamp.UTC()
		}
		if first.IsZero() {
			first = t.Timestamp.UTC()
		}
	}
	return first
}

func attachmentData(d *Document, opts *ImportOptions) ([]AttachmentData, []attachmentJSON) {
	refs := newRefIndex(d.Manifest)
	// The file as received travels as OriginalName: no attachment takes it.
	names := map[string]int{envelope.AttachmentNameKey(OriginalName): 2}
	var out []AttachmentData
	var list []attachmentJSON
	for i, a := range d.Attachments {
		var ref Reference
		if j := refs.match(a); j >= 0 {
			ref = d.Manifest[j]
		}
		cid := firstOf(a.ContentID, ref.ContentID)
		orig := firstOf(a.AttachmentName, ref.AttachmentName)
		name := uniqueName(safeName(orig, cid, i), names)
		if name != orig {
			opts.warnf("attachment %q stored as %q", orig, name)
		}
		mediaType := firstOf(a.ContentType, ref.ContentType, mime.TypeByExtension(strings.ToLower(path.Ext(name))), "application/octet-stream")
		out = append(out, AttachmentData{
			Name:        name,
			MediaType:   mediaType,
			ContentID:   cid,
			Description: firstOf(ref.Description, a.Description),
			Size:        a.Size,
			open:        a.Open,
		})
		aj := attachmentJSON{Name: name, ContentID: cid}
		if orig != name {
			aj.AttachmentName = orig
		}
		list = append(list, aj)
	}
	for j, r := range d.Manifest {
		if !refs.used[j] {
			opts.warnf("manifest reference %q (%s) has no attachment", r.AttachmentName, r.ContentID)
		}
	}
	return out, list
}

// refIndex finds the manifest entry of an attachment: same content id,
// else same name, each entry used once. Indexed, since a file may list
// thousands.
type refIndex struct {
	byCID, byName map[string][]int
	used          []bool
}

func newRefIndex(refs []Reference) *refIndex {
	x := &refIndex{byCID: make(map[string][]int), byName: make(map[string][]int), used: make([]bool, len(refs))}
	for j, r := range refs {
		for _, c := range []string{normCID(r.ContentID), normCID(r.Href)} {
			if c != "" {
				x.byCID[c] = append(x.byCID[c], j)
			}
		}
		if r.AttachmentName != "" {
			x.byName[r.AttachmentName] = append(x.byName[r.AttachmentName], j)
		}
	}
	return x
}

func (x *refIndex) match(a Attachment) int {
	if j := x.take(x.byCID, normCID(a.ContentID)); j >= 0 {
		return j
	}
	return x.take(x.byName, a.AttachmentName)
}

func (x *refIndex) take(m map[string][]int, k string) int {
	if k == "" {
		return -1
	}
	q := m[k]
	for len(q) > 0 && x.used[q[0]] {
		q = q[1:]
	}
	m[k] = q
	if len(q) == 0 {
		return -1
	}
	x.used[q[0]] = true
	return q[0]
}

func normCID(s string) string {
	s = strings.TrimSpace(s)
	s = strings.Trim(s, "<>")
	if len(s) >= 4 && strings.EqualFold(s[:4], "cid:") {
		s = s[4:]
	}
	return strings.ToLower(strings.Trim(s, "<>"))
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// safeName makes an edXML attachment name acceptable to
// envelope.CheckAttachmentName (see envelope.CleanAttachmentName), falling
// back on the content id, then on a made-up name.
func safeName(name, cid string, i int) string {
	if name = envelope.CleanAttachmentName(name); name != "" {
		return name
	}
	if c := normCID(cid); c != "" && envelope.CheckAttachmentName(c) == nil {
		return c
	}
	return fmt.Sprintf("attachment-%d", i+1)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// uniqueName appends " (2)", " (3)"... before the extension of a name
// already taken, in any case (envelope.AttachmentNameKey). seen remembers,
// per key, the next number to try.
func uniqueName(name string, seen map[string]int) string {
	key := envelope.AttachmentNameKey(name)
	if seen[key] == 0 {
		seen[key] = 2
		return name
	}
	ext := path.Ext(name)
	base := name[:len(name)-len(ext)]
	for n := seen[key]; ; n++ {
		suffix := fmt.Sprintf(" (%d)", n)
		c := truncate(base, envelope.MaxName-len(suffix)-len(ext)) + suffix + ext
		if ck := envelope.AttachmentNameKey(c); seen[ck] == 0 {
			seen[key] = n + 1
			seen[ck] = 2
			return c
		}
	}
}

// StatusToEnvelope converts a status message: a status envelope from the
// reporting agency to the sender of the document it is about.
func StatusToEnvelope(s *Status, opts ImportOptions) (*envelope.Envelope, error) {
	if s == nil {
		return nil, fmt.Errorf("edxml: %w: no status message", ErrKind)
	}
	h := &s.MessageHeader
	st, err := s.State()
	if err != nil {
		return nil, fmt.Errorf("edxml: StatusCode: %w", err)
	}
	e := &envelope.Envelope{
		ID:      opts.newID("", envelope.KindStatus),
		Kind:    envelope.KindStatus,
		From:    h.From.OrganID,
		Created: h.Timestamp.UTC(),
		Subject: "status " + string(st),
		Status:  &envelope.Status{State: st, Note: h.Description},
	}
	if h.Timestamp.IsZero() {
		e.Created = opts.now()
	}
	if h.ResponseFor.OrganID != "" {
		e.To = []string{h.ResponseFor.OrganID}
	} else {
		opts.warnf("status: no ResponseFor/OrganId: the envelope has no recipient")
	}
	if si := h.StaffInfo; si != (StaffInfo{}) {
		e.Status.Staff = &envelope.Staff{Department: si.Department, Name: si.Staff, Email: si.Email, Phone: si.Mobile}
	}
	rf := &h.ResponseFor
	e.Status.Of = opts.resolve(rf.DocumentID)
	if e.Status.Of == "" {
		opts.warnf("status: ResponseFor/DocumentId %q does not name a known envelope: Status.Of left empty", rf.DocumentID)
	}
	x := extra{}
	x.from(h.From)
	x.set(KeyResponseForCode, rf.Code)
	x.set(KeyResponseForPromulgationDate, rf.PromulgationDate.ISO())
	if rf.DocumentID != e.Status.Of {
		x[KeyResponseForDocumentID] = rf.DocumentID
	}
	if len(s.TraceHeaderList.TraceHeader) > 0 {
		x.trace(s.TraceHeaderList.TraceHeader)
	}
	x.extensions(s.Extensions)
	e.Extra = x
	return e, nil
}
