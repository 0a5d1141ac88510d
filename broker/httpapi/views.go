package httpapi

import (
	"context"
	"net/url"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/envelope"
)

// The JSON the API answers with. Field names follow the envelope's own
// JSON form; what the server adds (verification, links) sits beside it.

type attachmentView struct {
	envelope.Attachment
	// URL downloads the attachment (relative to the server).
	URL string `json:"url"`
}

type envelopeView struct {
	ID          string             `json:"id"`
	Kind        envelope.Kind      `json:"kind,omitempty"`
	Refers      string             `json:"refers,omitempty"`
	From        string             `json:"from"`
	To          []string           `json:"to"`
	Created     *time.Time         `json:"created,omitempty"`
	Subject     string             `json:"subject"`
	Reason      string             `json:"reason,omitempty"`
	Document    *envelope.Document `json:"document,omitempty"`
	Body        string             `json:"body,omitempty"`
	Extra       map[string]string  `json:"extra,omitempty"`
	Attachments []attachmentView   `json:"attachments"`
	// Verified: signature, chain, validity, revocation, sender binding and
	// address all checked. Attachments are checked while they download.
	Verified          bool      `json:"verified"`
	VerificationError string    `json:"verification_error,omitempty"`
	Digest            string    `json:"digest"`
	Signer            string    `json:"signer,omitempty"`
	Seq               uint64    `json:"seq"`
	Stored            time.Time `json:"stored"`
	Role              string    `json:"role,omitempty"`
}

func attachmentURL(id, name string) string {
	return "/v1/envelopes/" + id + "/attachments/" + url.PathEscape(name)
}

func viewOf(se *broker.StoredEnvelope, role string) envelopeView {
	v := envelopeView{Verified: se.Verified(), Digest: envelope.Digest(se.Raw), Seq: se.Seq, Stored: se.Stored.UTC(),
		Role: role, Attachments: []attachmentView{}, To: []string{}}
	if se.Err != nil {
		v.VerificationError = se.Err.Error()
	}
	if se.Signed != nil {
		v.Signer = se.Signed.Chain[0].Subject.CommonName
	}
	e := se.Envelope
	if e == nil {
		return v
	}
	created := e.Created
	v.ID, v.Kind, v.Refers, v.From, v.Created, v.Subject = e.ID, e.Kind, e.Refers, e.From, &created, e.Subject
	v.Reason, v.Document, v.Body, v.Extra = e.Reason, e.Document, e.Body, e.Extra
	if e.To != nil {
		v.To = e.To
	}
	for _, a := range e.Attachments {
		v.Attachments = append(v.Attachments, attachmentView{Attachment: a, URL: attachmentURL(e.ID, a.Name)})
	}
	return v
}

type recipientView struct {
	Agency  string         `json:"agency"`
	State   envelope.State `json:"state"`
	Code    string         `json:"code,omitempty"`
	Updated time.Time      `json:"updated"`
	Overdue bool           `json:"overdue,omitempty"`
	Reason  string         `json:"reason,omitempty"`
}

// documentView is one line of a clerk's list.
type documentView struct {
	ID                string             `json:"id"`
	Kind              envelope.Kind      `json:"kind,omitempty"`
	Subject           string             `json:"subject"`
	Sender            string             `json:"sender"`
	Created           time.Time          `json:"created"`
	DueDate           string             `json:"due_date,omitempty"`
	Overdue           bool               `json:"overdue"`
	Role              string             `json:"role"`
	Document          *envelope.Document `json:"document,omitempty"`
	Verified          bool               `json:"verified"`
	VerificationError string             `json:"verification_error,omitempty"`
	Attachments       []attachmentView   `json:"attachments"`
	Recipients        []recipientView    `json:"recipients"`
}

type agencyView struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

// readEnvelope reads a copy back from the record, through the cache.
func (s *Server) readEnvelope(ctx context.Context, seq uint64) (*broker.StoredEnvelope, error) {
	now := time.Now()
	if se, ok := s.cache.get(seq, now); ok {
		return se, nil
	}
	se, err := s.c.ReadEnvelope(ctx, seq)
	if err != nil {
		return nil, err
	}
	s.cache.put(se, now)
	return se, nil
}
