package edxml

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
)

// xw writes edXML the way the samples look: a default-namespace edXML root,
// every element of the message with the edXML: prefix (declared on the
// root, so that AttachmentEncoded is well-formed too), two-space indent.
type xw struct {
	w    *bufio.Writer
	err  error
	path []string
	exts map[string][]string
}

func newWriter(w io.Writer, exts []Extension) *xw {
	x := &xw{w: bufio.NewWriterSize(w, 32<<10), exts: make(map[string][]string)}
	for _, e := range exts {
		x.exts[e.Parent] = append(x.exts[e.Parent], e.XML)
	}
	x.raw(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	x.raw(`<edXML xmlns="` + Namespace + `" xmlns:edXML="` + Namespace + `">` + "\n")
	return x
}

func (x *xw) raw(s string) {
	if x.err == nil {
		_, x.err = x.w.WriteString(s)
	}
}

func (x *xw) indent() { x.raw(strings.Repeat("  ", len(x.path)+1)) }

// start opens an element; suffix is the [n] of a repeated one, for the
// extension path.
func (x *xw) start(name, suffix, attrs string) {
	x.indent()
	x.raw("<edXML:" + name + attrs + ">\n")
	x.path = append(x.path, name+suffix)
}

// end writes the extensions kept for this element, then closes it.
func (x *xw) end() {
	rel := strings.Join(x.path, "/")
	for _, s := range x.exts[rel] {
		x.indent()
		x.raw(s + "\n")
	}
	delete(x.exts, rel)
	name := x.path[len(x.path)-1]
	if i := strings.IndexByte(name, '['); i >= 0 {
		name = name[:i]
	}
	x.path = x.path[:len(x.path)-1]
	x.indent()
	x.raw("</edXML:" + name + ">\n")
}

func (x *xw) leaf(name, value string) {
	x.indent()
	var b strings.Builder
	escape(&b, value, false)
	x.raw("<edXML:" + name + ">" + b.String() + "</edXML:" + name + ">\n")
}

func (x *xw) leafIf(name, value string) {
	if value != "" {
		x.leaf(name, value)
	}
}

func attr(name, value string) string {
	var b strings.Builder
	escape(&b, value, true)
	return " " + name + `="` + b.String() + `"`
}

func (x *xw) finish() error {
	x.raw("</edXML>\n")
	if x.err == nil {
		x.err = x.w.Flush()
	}
	if x.err != nil {
		return fmt.Errorf("edxml: writing: %w", x.err)
	}
	return nil
}

func (x *xw) org(name, suffix string, o *Organization) {
	x.start(name, suffix, "")
	x.leaf("OrganId", o.OrganID)
	x.leaf("OrganizationInCharge", o.OrganInCharge)
	x.leaf("OrganName", o.OrganName)
	x.leaf("OrganAdd", o.OrganAdd)
	x.leaf("Email", o.Email)
	x.leaf("Telephone", o.Telephone)
	x.leaf("Fax", o.Fax)
	x.leaf("Website", o.Website)
	x.end()
}

func (x *xw) responseFor(suffix string, r *ResponseFor) {
	x.start("ResponseFor", suffix, "")
	x.leaf("OrganId", r.OrganID)
	x.leaf("Code", r.Code)
	x.leaf("PromulgationDate", r.PromulgationDate.String())
	x.leaf("DocumentId", r.DocumentID)
	x.end()
}

func (x *xw) staff(s *StaffInfo) {
	x.start("StaffInfo", "", "")
	x.leaf("Department", s.Department)
	x.leaf("Staff", s.Staff)
	x.leaf("Mobile", s.Mobile)
	x.leaf("Email", s.Email)
	x.end()
}

func (x *xw) messageHeader(h *MessageHeader) {
	x.start("MessageHeader", "", "")
	x.org("From", "", &h.From)
	for i := range h.To {
		x.org("To", idx(i), &h.To[i])
	}
	x.start("Code", "", "")
	x.leaf("CodeNumber", h.Code.CodeNumber)
	x.leaf("CodeNotation", h.Code.CodeNotation)
	x.end()
	x.start("PromulgationInfo", "", "")
	x.leaf("Place", h.PromulgationInfo.Place)
	x.leaf("PromulgationDate", h.PromulgationInfo.PromulgationDate.String())
	x.end()
	x.start("DocumentType", "", "")
	x.leaf("Type", h.DocumentType.Type)
	x.leaf("TypeName", h.DocumentType.TypeName)
	x.end()
	x.leaf("Subject", h.Subject)
	x.leaf("Content", h.Content)
	x.start("SignerInfo", "", "")
	x.leaf("Competence", h.SignerInfo.Competence)
	x.leaf("Position", h.SignerInfo.Position)
	x.leaf("FullName", h.SignerInfo.FullName)
	x.end()
	x.leafIf("DueDate", h.DueDate.String())
	if len(h.ToPlaces) > 0 {
		x.start("ToPlaces", "", "")
		for _, p := range h.ToPlaces {
			x.leaf("Place", p)
		}
		x.end()
	}
	if o := &h.OtherInfo; o.Priority != "" || o.SphereOfPromulgation != "" || o.TyperNotation != "" ||
		o.PromulgationAmount != "" || o.PageAmount != "" || len(o.Appendixes) > 0 {
		x.start("OtherInfo", "", "")
		x.leafIf("Priority", o.Priority)
		x.leafIf("SphereOfPromulgation", o.SphereOfPromulgation)
		x.leafIf("TyperNotation", o.TyperNotation)
		x.leafIf("PromulgationAmount", o.PromulgationAmount)
		x.leafIf("PageAmount", o.PageAmount)
		if len(o.Appendixes) > 0 {
			x.start("Appendixes", "", "")
			for _, a := range o.Appendixes {
				x.leaf("Appendix", a)
			}
			x.end()
		}
		x.end()
	}
	for i := range h.ResponseFor {
		x.responseFor(idx(i), &h.ResponseFor[i])
	}
	x.leafIf("SteeringType", h.SteeringType)
	x.leaf("DocumentId", h.DocumentID)
	x.end()
}

func (x *xw) traceList(tl *TraceHeaderList) {
	b := &tl.Bussiness
	hasB := b.DocumentID != "" || b.BussinessDocType != DocNew || b.BussinessDocReason != "" || b.Paper != "" ||
		b.StaffInfo != (StaffInfo{}) || b.BussinessDocumentInfo.DocumentInfo != "" ||
		b.BussinessDocumentInfo.DocumentReceiver != "" || len(b.BussinessDocumentInfo.ReceiverList) > 0 ||
		len(b.ReplacementInfoList) > 0
	if len(tl.TraceHeader) == 0 && !hasB {
		return
	}
	x.start("TraceHeaderList", "", "")
	for i, t := range tl.TraceHeader {
		x.start("TraceHeader", idx(i), "")
		x.leaf("OrganId", t.OrganID)
		x.leaf("Timestamp", FormatTimestamp(t.Timestamp))
		x.end()
	}
	if hasB {
		x.start("Bussiness", "", "")
		x.leaf("BussinessDocType", fmt.Sprint(int(b.BussinessDocType)))
		x.leaf("BussinessDocReason", b.BussinessDocReason)
		if info := &b.BussinessDocumentInfo; info.DocumentInfo != "" || info.DocumentReceiver != "" || len(info.ReceiverList) > 0 {
			x.start("BussinessDocumentInfo", "", "")
			x.leafIf("DocumentInfo", info.DocumentInfo)
			x.leafIf("DocumentReceiver", info.DocumentReceiver)
			if len(info.ReceiverList) > 0 {
				x.start("ReceiverList", "", "")
				for i, r := range info.ReceiverList {
					x.start("Receiver", idx(i), "")
					x.leaf("ReceiverType", r.ReceiverType)
					x.leaf("OrganId", r.OrganID)
					x.end()
				}
				x.end()
			}
			x.end()
		}
		x.leafIf("DocumentId", b.DocumentID)
		if b.StaffInfo != (StaffInfo{}) {
			x.staff(&b.StaffInfo)
		}
		x.leafIf("Paper", b.Paper)
		if len(b.ReplacementInfoList) > 0 {
			x.start("ReplacementInfoList", "", "")
			for i, r := range b.ReplacementInfoList {
				x.start("ReplacementInfo", idx(i), "")
				x.leaf("DocumentId", r.DocumentID)
				x.start("OrganIdList", "", "")
				for _, o := range r.OrganIDList {
					x.leaf("OrganId", o)
				}
				x.end()
				x.end()
			}
			x.end()
		}
		x.end()
	}
	x.end()
}

func (x *xw) signature(sig []byte) {
	if len(sig) > 0 {
		x.indent()
		x.raw(string(sig) + "\n")
	}
}

// WriteDocument writes d as an edXML document message, streaming each
// attachment from its Open through a base64 encoder. d.Signature, if set,
// is written verbatim: it only verifies if d is unchanged from a parsed
// file and the serialisation happens to match, so leave it nil for a new
// message.
func WriteDocument(w io.Writer, d *Document) error {
	x := newWriter(w, d.Extensions)
	x.start("edXMLEnvelope", "", "")
	x.start("edXMLHeader", "", "")
	x.messageHeader(&d.MessageHeader)
	x.traceList(&d.TraceHeaderList)
	x.signature(d.Signature)
	x.end()
	x.start("edXMLBody", "", "")
	x.start("edXMLManifest", "", attr("version", "1.0"))
	for i, r := range d.Manifest {
		x.start("Reference", idx(i), attr("xmlns:xlink", "http://www.w3.org/1999/xlink")+attr("xlink:href", r.Href))
		x.leaf("ContentId", r.ContentID)
		x.leaf("ContentType", r.ContentType)
		x.leaf("AttachmentName", r.AttachmentName)
		x.leafIf("Description", r.Description)
		x.end()
	}
	x.end()
	x.end()
	x.end()
	if len(d.Attachments) > 0 {
		x.start("AttachmentEncoded", "", "")
		for i := range d.Attachments {
			a := &d.Attachments[i]
			x.start("Attachment", idx(i), "")
			x.leaf("ContentId", a.ContentID)
			x.leaf("AttachmentName", a.AttachmentName)
			x.leaf("ContentType", a.ContentType)
			x.leafIf("Description", a.Description)
			x.indent()
			x.raw("<edXML:ContentTransferEncoded>")
			if err := x.content(a); err != nil {
				return err
			}
			x.raw("</edXML:ContentTransferEncoded>\n")
			x.end()
		}
		x.end()
	}
	return x.finish()
}

// content streams an attachment as one base64 line: some readers (Java's
// basic decoder) refuse line breaks inside the content.
func (x *xw) content(a *Attachment) error {
	if x.err != nil {
		return nil
	}
	if a.Open == nil {
		return fmt.Errorf("edxml: attachment %q: no content to write", a.AttachmentName)
	}
	rc, err := a.Open()
	if err != nil {
		return fmt.Errorf("edxml: attachment %q: %w", a.AttachmentName, err)
	}
	defer rc.Close()
	enc := base64.NewEncoder(base64.StdEncoding, x.w)
	if _, err := io.Copy(enc, rc); err != nil {
		return fmt.Errorf("edxml: attachment %q: %w", a.AttachmentName, err)
	}
	if err := enc.Close(); err != nil {
		x.err = err
	}
	return nil
}

// WriteStatus writes s as an edXML status message.
func WriteStatus(w io.Writer, s *Status) error {
	h := &s.MessageHeader
	x := newWriter(w, s.Extensions)
	x.start("edXMLEnvelope", "", "")
	x.start("edXMLHeader", "", "")
	x.start("MessageHeader", "", "")
	x.org("From", "", &h.From)
	x.responseFor("", &h.ResponseFor)
	x.staff(&h.StaffInfo)
	x.leaf("StatusCode", h.StatusCode)
	x.leaf("Description", h.Description)
	x.leaf("Timestamp", FormatTimestamp(h.Timestamp))
	x.end()
	x.traceList(&s.TraceHeaderList)
	x.signature(s.Signature)
	x.end()
	x.end()
	return x.finish()
}
