package edxml

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docaxis/docaxis/envelope"
)

// Element names are matched case-insensitively on local names (any
// namespace or prefix), and a few spellings seen in the wild are read as
// the standard ones.
var aliases = map[string]string{
	"organincharge":        "organizationincharge",
	"business":             "bussiness",
	"businessdoctype":      "bussinessdoctype",
	"businessdocreason":    "bussinessdocreason",
	"businessdocumentinfo": "bussinessdocumentinfo",
}

func key(name string) string {
	k := strings.ToLower(name)
	if a, ok := aliases[k]; ok {
		return a
	}
	return k
}

// idx returns the path suffix of the i-th (0-based) repeated element.
func idx(i int) string {
	if i == 0 {
		return ""
	}
	return fmt.Sprintf("[%d]", i+1)
}

// mapper turns the element tree into the typed message, collecting
// warnings and unknown elements.
type mapper struct {
	p    *parser
	exts []Extension
}

func (m *mapper) warn(n *node, format string, args ...any) {
	m.p.warnAt(n.line, n.path(), format, args...)
}

func (m *mapper) errorf(n *node, err error) *ParseError {
	return &ParseError{Path: n.path(), Line: n.line, Err: err}
}

// field describes one child element of a group: a string, a date, a
// timestamp, or something repeated or nested handled by fn.
type field struct {
	name string // standard spelling
	str  *string
	date *Date
	ts   *time.Time
	code bool // an agency code: flag it when non-standard
	fn   func(c *node) error
	many bool // repeatable: fn sees every occurrence, not just the first
}

// group maps the children of n onto fields; rel is n's canonical path for
// extensions. Unknown children become extensions, repeated singletons are
// reported and the first one kept.
func (m *mapper) group(n *node, rel string, fields ...field) error {
	if strings.TrimSpace(string(n.text)) != "" && len(n.kids) > 0 {
		m.warn(n, "text mixed with elements ignored")
	}
	seen := make(map[string]bool, len(fields))
	for _, c := range n.kids {
		k := key(c.name)
		var f *field
		for i := range fields {
			if strings.ToLower(fields[i].name) == k {
				f = &fields[i]
				break
			}
		}
		if f == nil {
			m.unknown(c, rel)
			continue
		}
		if c.name != f.name {
			m.warn(c, "read as <%s>", f.name)
		}
		if !f.many {
			if seen[k] {
				m.warn(c, "repeated <%s> ignored, the first one is kept", f.name)
				continue
			}
			seen[k] = true
		}
		if f.fn != nil {
			if err := f.fn(c); err != nil {
				return err
			}
			continue
		}
		v := m.leaf(c)
		switch {
		case f.str != nil:
			*f.str = v
			if f.code {
				m.checkCode(c, v)
			}
		case f.date != nil:
			d, canonical, err := parseDate(v)
			if err != nil {
				return m.errorf(c, err)
			}
			if !canonical {
				m.warn(c, "date %q is not in the form yyyy/MM/dd", v)
			}
			*f.date = d
		case f.ts != nil:
			t, canonical, err := parseTimestamp(v)
			if err != nil {
				return m.errorf(c, err)
			}
			if !canonical {
				m.warn(c, "timestamp %q is not in the form yyyy/MM/dd HH:mm:ss", v)
			}
			*f.ts = t
		}
	}
	return nil
}

func (m *mapper) leaf(n *node) string {
	if len(n.kids) > 0 {
		m.warn(n, "child elements of a text element ignored")
	}
	return strings.TrimSpace(string(n.text))
}

func (m *mapper) unknown(n *node, rel string) {
	if n.content != nil {
		m.warn(n, "attachment content outside an Attachment ignored")
		return
	}
	m.warn(n, "unknown element kept as an extension")
	m.exts = append(m.exts, Extension{Parent: rel, XML: serialize(n)})
}

func (m *mapper) checkCode(n *node, code string) {
	if code == "" || envelope.IsStandardCode(code) {
		return
	}
	if err := envelope.CheckNonStandardCode(code); err != nil {
		m.warn(n, "agency code %q is not in the standard form and cannot be registered as a non-standard code: %v", code, err)
		return
	}
	m.warn(n, "agency code %q is not in the standard form 000.00.00.G22", code)
}

// strings list: the children named name of n, e.g. ToPlaces/Place.
func (m *mapper) list(n *node, rel, name string, out *[]string, code bool) error {
	return m.group(n, rel, field{name: name, many: true, fn: func(c *node) error {
		v := m.leaf(c)
		if v == "" {
			return nil
		}
		if code {
			m.checkCode(c, v)
		}
		*out = append(*out, v)
		return nil
	}})
}

func (m *mapper) org(n *node, rel string, o *Organization) error {
	return m.group(n, rel,
		field{name: "OrganId", str: &o.OrganID, code: true},
		field{name: "OrganizationInCharge", str: &o.OrganInCharge},
		field{name: "OrganName", str: &o.OrganName},
		field{name: "OrganAdd", str: &o.OrganAdd},
		field{name: "Email", str: &o.Email},
		field{name: "Telephone", str: &o.Telephone},
		field{name: "Fax", str: &o.Fax},
		field{name: "Website", str: &o.Website},
	)
}

func (m *mapper) responseFor(n *node, rel string, r *ResponseFor) error {
	return m.group(n, rel,
		field{name: "OrganId", str: &r.OrganID, code: true},
		field{name: "Code", str: &r.Code},
		field{name: "PromulgationDate", date: &r.PromulgationDate},
		field{name: "DocumentId", str: &r.DocumentID},
	)
}

func (m *mapper) staff(n *node, rel string, s *StaffInfo) error {
	return m.group(n, rel,
		field{name: "Department", str: &s.Department},
		field{name: "Staff", str: &s.Staff},
		field{name: "Mobile", str: &s.Mobile},
		field{name: "Email", str: &s.Email},
	)
}

// message maps the tree below root into m.
func (m *mapper) message(root *node, msg *Message) error {
	var env *node
	var attached []*node
	if key(root.name) == "edxmlenvelope" {
		env = root
	} else {
		for _, c := range root.kids {
			switch key(c.name) {
			case "edxmlenvelope":
				if env != nil {
					m.warn(c, "second <edXMLEnvelope> ignored")
					continue
				}
				env = c
			case "attachmentencoded":
				attached = append(attached, c)
			default:
				m.warn(c, "unknown element outside edXMLEnvelope ignored")
			}
		}
	}
	if env == nil {
		return m.errorf(root, fmt.Errorf("%w: <edXMLEnvelope>", ErrMissing))
	}
	const relEnv = "edXMLEnvelope"
	var header, body *node
	for _, c := range env.kids {
		switch key(c.name) {
		case "edxmlheader":
			if header == nil {
				header = c
				continue
			}
		case "edxmlbody":
			if body == nil {
				body = c
				continue
			}
		case "attachmentencoded":
			attached = append(attached, c)
			continue
		}
		m.unknown(c, relEnv)
	}
	if header == nil {
		return m.errorf(env, fmt.Errorf("%w: <edXMLHeader>", ErrMissing))
	}
	const relHeader = relEnv + "/edXMLHeader"
	var mh, trace *node
	var sig []byte
	for _, c := range header.kids {
		switch key(c.name) {
		case "messageheader":
			if mh == nil {
				mh = c
				continue
			}
		case "traceheaderlist":
			if trace == nil {
				trace = c
				continue
			}
		case "signature":
			if sig == nil {
				sig = c.raw
				m.checkSignature(c)
				continue
			}
		}
		m.unknown(c, relHeader)
	}
	if mh == nil {
		return m.errorf(header, fmt.Errorf("%w: <MessageHeader>", ErrMissing))
	}
	const relMH = relHeader + "/MessageHeader"
	var tl TraceHeaderList
	if trace != nil {
		if err := m.traceList(trace, relHeader+"/TraceHeaderList", &tl); err != nil {
			return err
		}
	}
	isStatus := false
	for _, c := range mh.kids {
		if key(c.name) == "statuscode" {
			isStatus = true
		}
	}
	if isStatus {
		s := &Status{TraceHeaderList: tl, Signature: sig}
		if err := m.statusHeader(mh, relMH, &s.MessageHeader); err != nil {
			return err
		}
		if body != nil && len(body.kids) > 0 {
			m.warn(body, "body of a status message ignored")
		}
		for _, a := range attached {
			if len(a.kids) > 0 {
				m.warn(a, "attachments of a status message ignored")
			}
		}
		s.Extensions = m.exts
		msg.status = s
		return nil
	}
	d := &Document{TraceHeaderList: tl, Signature: sig}
	if err := m.docHeader(mh, relMH, &d.MessageHeader); err != nil {
		return err
	}
	if body != nil {
		if err := m.body(body, relEnv+"/edXMLBody", d); err != nil {
			return err
		}
	}
	for _, a := range attached {
		if err := m.attachments(a, msg, d); err != nil {
			return err
		}
	}
	if len(d.MessageHeader.To) == 0 {
		m.warn(mh, "no <To> recipient")
	}
	d.Extensions = m.exts
	msg.doc = d
	return nil
}

// checkSignature flags a signature that would not stand alone: its prefix
// is declared on an ancestor, so the verbatim copy lacks the declaration.
func (m *mapper) checkSignature(n *node) {
	const dsig = "http://www.w3.org/2000/09/xmldsig#"
	if n.space != dsig {
		m.warn(n, "signature in namespace %q, want %q", n.space, dsig)
	}
	raw := string(n.raw)
	if i := strings.IndexAny(raw, " \t\r\n>/"); i > 1 {
		if name := raw[1:i]; strings.Contains(name, ":") {
			prefix := name[:strings.Index(name, ":")]
			if !strings.Contains(raw, "xmlns:"+prefix+"=") {
				m.warn(n, "signature prefix %q is declared outside the element; it is kept verbatim", prefix)
			}
		}
	}
}

func (m *mapper) docHeader(n *node, rel string, h *MessageHeader) error {
	err := m.group(n, rel,
		field{name: "From", fn: func(c *node) error {
			return m.org(c, rel+"/From", &h.From)
		}},
		field{name: "To", many: true, fn: func(c *node) error {
			var o Organization
			if err := m.org(c, rel+"/To"+idx(len(h.To)), &o); err != nil {
				return err
			}
			if o == (Organization{}) {
				m.warn(c, "empty <To> ignored")
				return nil
			}
			if o.OrganID == "" {
				m.warn(c, "<To> without <OrganId>")
			}
			h.To = append(h.To, o)
			return nil
		}},
		field{name: "Code", fn: func(c *node) error {
			return m.group(c, rel+"/Code",
				field{name: "CodeNumber", str: &h.Code.CodeNumber},
				field{name: "CodeNotation", str: &h.Code.CodeNotation})
		}},
		field{name: "PromulgationInfo", fn: func(c *node) error {
			return m.group(c, rel+"/PromulgationInfo",
				field{name: "Place", str: &h.PromulgationInfo.Place},
				field{name: "PromulgationDate", date: &h.PromulgationInfo.PromulgationDate})
		}},
		field{name: "DocumentType", fn: func(c *node) error {
			return m.group(c, rel+"/DocumentType",
				field{name: "Type", str: &h.DocumentType.Type},
				field{name: "TypeName", str: &h.DocumentType.TypeName})
		}},
		field{name: "Subject", str: &h.Subject},
		field{name: "Content", str: &h.Content},
		field{name: "SignerInfo", fn: func(c *node) error {
			return m.group(c, rel+"/SignerInfo",
				field{name: "Competence", str: &h.SignerInfo.Competence},
				field{name: "Position", str: &h.SignerInfo.Position},
				field{name: "FullName", str: &h.SignerInfo.FullName})
		}},
		field{name: "DueDate", date: &h.DueDate},
		field{name: "ToPlaces", fn: func(c *node) error {
			return m.list(c, rel+"/ToPlaces", "Place", &h.ToPlaces, false)
		}},
		field{name: "OtherInfo", fn: func(c *node) error {
			o := &h.OtherInfo
			r := rel + "/OtherInfo"
			return m.group(c, r,
				field{name: "Priority", str: &o.Priority},
				field{name: "SphereOfPromulgation", str: &o.SphereOfPromulgation},
				field{name: "TyperNotation", str: &o.TyperNotation},
				field{name: "PromulgationAmount", str: &o.PromulgationAmount},
				field{name: "PageAmount", str: &o.PageAmount},
				field{name: "Appendixes", fn: func(c *node) error {
					return m.list(c, r+"/Appendixes", "Appendix", &o.Appendixes, false)
				}})
		}},
		field{name: "ResponseFor", many: true, fn: func(c *node) error {
			var r ResponseFor
			if err := m.responseFor(c, rel+"/ResponseFor"+idx(len(h.ResponseFor)), &r); err != nil {
				return err
			}
			// The samples carry an all-empty ResponseFor: it says nothing.
			if r != (ResponseFor{}) {
				h.ResponseFor = append(h.ResponseFor, r)
			}
			return nil
		}},
		field{name: "SteeringType", str: &h.SteeringType},
		field{name: "DocumentId", str: &h.DocumentID},
	)
	if err != nil {
		return err
	}
	if h.From.OrganID == "" {
		return m.errorf(n, fmt.Errorf("%w: <From>/<OrganId> (the sending agency)", ErrMissing))
	}
	if h.Subject == "" {
		m.warn(n, "no <Subject>")
	}
	return nil
}

func (m *mapper) statusHeader(n *node, rel string, h *StatusHeader) error {
	var code *node
	err := m.group(n, rel,
		field{name: "From", fn: func(c *node) error {
			return m.org(c, rel+"/From", &h.From)
		}},
		field{name: "ResponseFor", fn: func(c *node) error {
			return m.responseFor(c, rel+"/ResponseFor", &h.ResponseFor)
		}},
		field{name: "StaffInfo", fn: func(c *node) error {
			return m.staff(c, rel+"/StaffInfo", &h.StaffInfo)
		}},
		field{name: "StatusCode", fn: func(c *node) error {
			code = c
			return nil
		}},
		field{name: "Description", str: &h.Description},
		field{name: "Timestamp", ts: &h.Timestamp},
	)
	if err != nil {
		return err
	}
	v := m.leaf(code)
	if v == "" {
		return m.errorf(code, fmt.Errorf("%w: empty <StatusCode>", ErrMissing))
	}
	st, err := stateOf(v)
	if err != nil {
		return m.errorf(code, err)
	}
	if st.Code() != v {
		m.warn(code, "status code %q read as %q", v, st.Code())
	}
	h.StatusCode = st.Code()
	if h.From.OrganID == "" {
		return m.errorf(n, fmt.Errorf("%w: <From>/<OrganId> (the reporting agency)", ErrMissing))
	}
	if h.ResponseFor.DocumentID == "" {
		m.warn(n, "no <ResponseFor>/<DocumentId>: the status names no document")
	}
	if h.Timestamp.IsZero() {
		m.warn(n, "no <Timestamp>")
	}
	return nil
}

func (m *mapper) traceList(n *node, rel string, tl *TraceHeaderList) error {
	b := &tl.Bussiness
	var docType string
	var docTypeNode *node
	return m.group(n, rel,
		field{name: "TraceHeader", many: true, fn: func(c *node) error {
			var t TraceHeader
			err := m.group(c, rel+"/TraceHeader"+idx(len(tl.TraceHeader)),
				field{name: "OrganId", str: &t.OrganID, code: true},
				field{name: "Timestamp", ts: &t.Timestamp})
			if err != nil {
				return err
			}
			if t != (TraceHeader{}) {
				tl.TraceHeader = append(tl.TraceHeader, t)
			}
			return nil
		}},
		field{name: "Bussiness", fn: func(c *node) error {
			r := rel + "/Bussiness"
			err := m.group(c, r,
				field{name: "DocumentId", str: &b.DocumentID},
				field{name: "BussinessDocType", fn: func(c *node) error {
					docTypeNode, docType = c, m.leaf(c)
					return nil
				}},
				field{name: "BussinessDocReason", str: &b.BussinessDocReason},
				field{name: "Paper", str: &b.Paper},
				field{name: "StaffInfo", fn: func(c *node) error {
					return m.staff(c, r+"/StaffInfo", &b.StaffInfo)
				}},
				field{name: "BussinessDocumentInfo", fn: func(c *node) error {
					return m.docInfo(c, r+"/BussinessDocumentInfo", &b.BussinessDocumentInfo)
				}},
				field{name: "ReplacementInfoList", fn: func(c *node) error {
					return m.replacements(c, r+"/ReplacementInfoList", &b.ReplacementInfoList)
				}},
			)
			if err != nil {
				return err
			}
			switch docType {
			case "", "0":
				b.BussinessDocType = DocNew
			case "1":
				b.BussinessDocType = DocRevoke
			case "2":
				b.BussinessDocType = DocUpdate
			case "3":
				b.BussinessDocType = DocReplace
			default:
				return m.errorf(docTypeNode, fmt.Errorf("%w: BussinessDocType %q: want 0 (new), 1 (revoke), 2 (update) or 3 (replace)", ErrBadValue, docType))
			}
			return nil
		}},
	)
}

func (m *mapper) docInfo(n *node, rel string, d *BussinessDocumentInfo) error {
	return m.group(n, rel,
		field{name: "DocumentInfo", str: &d.DocumentInfo},
		field{name: "DocumentReceiver", str: &d.DocumentReceiver},
		field{name: "ReceiverList", fn: func(c *node) error {
			r := rel + "/ReceiverList"
			return m.group(c, r, field{name: "Receiver", many: true, fn: func(c *node) error {
				var rc Receiver
				err := m.group(c, r+"/Receiver"+idx(len(d.ReceiverList)),
					field{name: "ReceiverType", str: &rc.ReceiverType},
					field{name: "OrganId", str: &rc.OrganID, code: true})
				if err == nil && rc != (Receiver{}) {
					d.ReceiverList = append(d.ReceiverList, rc)
				}
				return err
			}})
		}},
	)
}

func (m *mapper) replacements(n *node, rel string, list *[]ReplacementInfo) error {
	return m.group(n, rel, field{name: "ReplacementInfo", many: true, fn: func(c *node) error {
		var ri ReplacementInfo
		r := rel + "/ReplacementInfo" + idx(len(*list))
		err := m.group(c, r,
			field{name: "DocumentId", str: &ri.DocumentID},
			field{name: "OrganIdList", fn: func(c *node) error {
				return m.list(c, r+"/OrganIdList", "OrganId", &ri.OrganIDList, true)
			}})
		if err == nil && (ri.DocumentID != "" || len(ri.OrganIDList) > 0) {
			*list = append(*list, ri)
		}
		return err
	}})
}

func (m *mapper) body(n *node, rel string, d *Document) error {
	return m.group(n, rel, field{name: "edXMLManifest", fn: func(c *node) error {
		r := rel + "/edXMLManifest"
		return m.group(c, r, field{name: "Reference", many: true, fn: func(c *node) error {
			var ref Reference
			for _, a := range c.attrs {
				if a.Name.Local == "href" {
					ref.Href = a.Value
				}
			}
			err := m.group(c, r+"/Reference"+idx(len(d.Manifest)),
				field{name: "ContentId", str: &ref.ContentID},
				field{name: "ContentType", str: &ref.ContentType},
				field{name: "AttachmentName", str: &ref.AttachmentName},
				field{name: "Description", str: &ref.Description})
			if err == nil {
				d.Manifest = append(d.Manifest, ref)
			}
			return err
		}})
	}})
}

func (m *mapper) attachments(n *node, msg *Message, d *Document) error {
	return m.group(n, "AttachmentEncoded", field{name: "Attachment", many: true, fn: func(c *node) error {
		a := Attachment{Size: -1, Line: c.line}
		var ct *node
		err := m.group(c, "AttachmentEncoded/Attachment"+idx(len(d.Attachments)),
			field{name: "ContentId", str: &a.ContentID},
			field{name: "AttachmentName", str: &a.AttachmentName},
			field{name: "ContentType", str: &a.ContentType},
			field{name: "Description", str: &a.Description},
			field{name: "ContentTransferEncoded", fn: func(c *node) error {
				ct = c
				return nil
			}})
		if err != nil {
			return err
		}
		if ct == nil || ct.content == nil {
			m.warn(c, "attachment %q has no <ContentTransferEncoded>; read as empty", a.AttachmentName)
			a.Size = 0
			a.Open = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("")), nil }
		} else {
			cont, path, line := ct.content, ct.path(), ct.line
			a.Size, a.Err = cont.size, nil
			if cont.err != nil {
				a.Size, a.Err = -1, cont.err
				m.p.warnAt(cont.err.Line, cont.err.Path, "attachment %q cannot be decoded: %v", a.AttachmentName, cont.err.Err)
			}
			src := msg.src
			a.Open = func() (io.ReadCloser, error) { return cont.open(src, path, line) }
		}
		d.Attachments = append(d.Attachments, a)
		return nil
	}})
}
