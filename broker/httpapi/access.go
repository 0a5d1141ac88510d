package httpapi

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
)

// access is what an agency may see of an envelope: its own pairs, and a
// copy of the envelope that is its own to read.
type access struct {
	status *broker.DocumentStatus
	role   string           // "sender" or "recipient"
	own    *broker.Tracking // the agency's own pair, as a recipient
	seq    uint64           // the copy below
	copy   *broker.StoredEnvelope
}

// access checks that agency sent or received envelope id, from its own
// tracking pairs alone (broker.Client.StatusFor), and finds the copy it
// may read: as a recipient, the copy in its own mailbox; as the sender, a
// copy it sent. Anything else, and any pair that points at a copy that is
// not that, answers not_found, as if the envelope did not exist: its
// existence is not theirs to know.
func (s *Server) access(ctx context.Context, agency, id string) (*access, error) {
	if !envelope.IsID(id) {
		return nil, apiError(http.StatusBadRequest, CodeBadRequest, "%q is not an envelope id (a UUID in canonical form)", id)
	}
	notFound := func() error {
		return apiError(http.StatusNotFound, CodeNotFound, "no envelope %s sent or received by %s", id, agency)
	}
	ds, role, err := s.c.StatusFor(ctx, id, agency)
	if errors.Is(err, broker.ErrNotFound) {
		return nil, notFound()
	}
	if err != nil {
		return nil, err
	}
	a, err := s.ownView(ctx, agency, id, role, ds.Recipients)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, notFound()
	}
	return a, nil
}

// ownView makes agency's view of envelope id from pairs (its own, as
// StatusFor or the list read them). It returns nil when nothing in them
// is agency's: the id is bound to another sender, or no pair points at a
// copy addressed as the pair says.
func (s *Server) ownView(ctx context.Context, agency, id, role string, pairs []broker.Tracking) (*access, error) {
	a := &access{role: role}
	var sender string
	switch role {
	case "sender":
		sender = agency
	case "recipient":
		if len(pairs) != 1 || pairs[0].Recipient != agency {
			return nil, nil
		}
		sender = pairs[0].Sender
	default:
		return nil, nil
	}
	// An id belongs to its first verified sender: pairs under another
	// sender are an id reused, not this envelope.
	bound, err := s.c.EnvelopeSender(ctx, id)
	switch {
	case err == nil && bound != sender:
		return nil, nil
	case err != nil && !errors.Is(err, broker.ErrNotFound):
		return nil, err
	}
	for i := range pairs {
		t := &pairs[i]
		if t.Seq == 0 || t.Sender != sender || t.Envelope != id {
			continue
		}
		se, err := s.readEnvelope(ctx, t.Seq)
		if errors.Is(err, broker.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if isCopy(se, id, sender, t.Recipient) {
			a.seq, a.copy = t.Seq, se
			if role == "recipient" {
				a.own = t
			}
			break
		}
	}
	if a.copy == nil {
		return nil, nil
	}
	ds := &broker.DocumentStatus{ID: id, Sender: sender}
	for _, t := range pairs {
		if role == "recipient" && t.Recipient != agency {
			continue
		}
		if !listed(a.copy, t) {
			continue
		}
		if ds.Subject == "" {
			ds.Subject, ds.Created, ds.DueDate = t.Subject, t.Created, t.DueDate
		}
		ds.Recipients = append(ds.Recipients, t)
	}
	if a.own != nil {
		own := *a.own
		a.own = &own
	}
	a.status = ds
	return a, nil
}

// isCopy tells whether se is the copy of envelope id that sender stored
// for recipient: on that recipient's mailbox subject from that sender,
// carrying that id. A pair can only name a copy by its sequence; the copy
// itself says what it is.
func isCopy(se *broker.StoredEnvelope, id, sender, recipient string) bool {
	if se.Subject != record.DocSubject(recipient, sender) || se.Envelope == nil {
		return false
	}
	return se.Envelope.ID == id && se.Envelope.From == sender
}

// listed tells whether pair t belongs in the sender's view: its recipient
// is addressed by the verified copy (a pair made by a receipt alone is
// not), or, when the copy did not verify, it has a copy of its own.
func listed(copy *broker.StoredEnvelope, t broker.Tracking) bool {
	if copy.Verified() {
		return slices.Contains(copy.Envelope.To, t.Recipient)
	}
	return t.Seq > 0
}
