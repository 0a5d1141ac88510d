package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/envelope/edxml"
)

// EdXMLResult tells what SendEdXML did with an edXML message.
type EdXMLResult struct {
	Kind       string         `json:"kind"` // document or status
	ID         string         `json:"id"`   // the envelope, or the status envelope
	Recipients []string       `json:"recipients,omitempty"`
	Of         string         `json:"of,omitempty"` // a status: the envelope it answers
	State      envelope.State `json:"state,omitempty"`
	// Skipped names attachments that could not be decoded (real files
	// carry placeholders); they still travel inside original.edxml.
	Skipped  []string `json:"skipped,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// ErrEdXMLSender: the file's From is not the agency sending it.
var ErrEdXMLSender = errors.New("edXML message is not from the sending agency")

// edxmlStatusWait is how long SendEdXML waits for a status it sent to be
// applied unless EdXMLStatusWait says otherwise (the status is sent
// whether or not it is, by then).
const edxmlStatusWait = 3 * time.Second

// EdXMLOption configures SendEdXML.
type EdXMLOption func(*edxmlOptions)

type edxmlOptions struct{ statusWait time.Duration }

// EdXMLStatusWait bounds how long SendEdXML waits for a status it sent to
// be applied (MarkOptions.Wait; default 3 s, 0 or less: no wait).
func EdXMLStatusWait(d time.Duration) EdXMLOption {
	return func(o *edxmlOptions) { o.statusWait = d }
}

// SendEdXML sends an edXML message as agency as: a document becomes an
// envelope signed now, its attachments and the original file stored (so its
// XML signature stays checkable) and its edXML DocumentId remembered; a
// status becomes a signed status on the envelope it answers, found by its
// DocumentId. A status returns once the tracker has applied it (for
// EdXMLStatusWait at most), so that the next one is judged from a state
// that has it.
func (c *Client) SendEdXML(ctx context.Context, as string, m *edxml.Message, options ...EdXMLOption) (*EdXMLResult, error) {
	o := edxmlOptions{statusWait: edxmlStatusWait}
	for _, opt := range options {
		opt(&o)
	}
	// A document's revoke, update or replace names a document of its own
	// sender; a status names the document's sender in ResponseFor/OrganId.
	sender := as
	if m.IsStatus() {
		sender = m.Status().MessageHeader.ResponseFor.OrganID
	}
	opts := edxml.ImportOptions{ResolveRef: func(docID string) (string, bool) { return c.ResolveDocumentID(ctx, sender, docID) }}
	res := &EdXMLResult{Warnings: append([]string(nil), m.Warnings...)}
	if m.IsStatus() {
		st, err := edxml.StatusToEnvelope(m.Status(), opts)
		if err != nil {
			return nil, err
		}
		if st.From != as {
			return nil, fmt.Errorf("%w: status from %s, sent as %s", ErrEdXMLSender, st.From, as)
		}
		if st.Status.Of == "" {
			return nil, fmt.Errorf("%w: the status answers a document not sent through this bus (ResponseFor DocumentId unknown)", ErrNotFound)
		}
		// Read-your-writes, as the HTTP API's own status route: a status
		// sent right after this one (accepted, then processing) is judged
		// from a state that has this one, not refused for the tracker's lag.
		sent, err := c.Mark(ctx, as, st.Status.Of, st.Status.State, MarkOptions{Note: st.Status.Note, Staff: st.Status.Staff, Wait: o.statusWait})
		if err != nil {
			return nil, err
		}
		res.Kind, res.ID, res.Of, res.State = "status", sent.ID, st.Status.Of, st.Status.State
		return res, nil
	}
	e, atts, err := m.ToEnvelope(opts)
	if err != nil {
		return nil, err
	}
	if e.From != as {
		return nil, fmt.Errorf("%w: document from %s, sent as %s", ErrEdXMLSender, e.From, as)
	}
	// The bus's signature is made now; the file's own timestamps stay in
	// its trace (Extra), which export writes back.
	e.Created = time.Now().UTC().Truncate(time.Millisecond)
	// edXML may list the sender among the recipients.
	e.To = slices.DeleteFunc(e.To, func(to string) bool { return to == e.From })
	// Refuse before storing anything: a file that cannot be sent must not
	// leave its attachments behind.
	if err := e.Validate(envelope.AllowCodes(c.dir.known)); err != nil {
		return nil, err
	}
	if err := c.checkRecipients(ctx, e); err != nil {
		return nil, err
	}
	uploaded := len(e.Attachments)
	for _, a := range append(atts, m.Original()) {
		ea, err := c.putEdXMLAttachment(ctx, a)
		if errors.Is(err, edxml.ErrBadBase64) {
			res.Skipped = append(res.Skipped, a.Name)
			continue
		}
		if err != nil {
			return nil, err
		}
		e.Attachments = append(e.Attachments, ea)
	}
	if err := c.recordUploads(ctx, e.From, e.Attachments[uploaded:]); err != nil {
		return nil, err
	}
	sent, err := c.Send(ctx, e)
	if err != nil && !errors.Is(err, ErrDuplicate) {
		return nil, err
	}
	if e.Document != nil && e.Document.DocumentID != "" {
		if err := c.RememberDocumentID(ctx, e.From, e.Document.DocumentID, sent.ID); err != nil {
			res.Warnings = append(res.Warnings, err.Error())
		}
	}
	res.Kind, res.ID, res.Recipients = "document", sent.ID, sent.Recipients
	return res, nil
}

func (c *Client) putEdXMLAttachment(ctx context.Context, a edxml.AttachmentData) (envelope.Attachment, error) {
	rc, err := a.Open()
	if err != nil {
		return envelope.Attachment{}, err
	}
	defer rc.Close()
	return c.PutAttachment(ctx, File{Name: a.Name, MediaType: a.MediaType, Reader: rc, Size: -1})
}
