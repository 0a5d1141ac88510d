package vxp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/failover"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/envelope/edxml"
)

func nowUTC() time.Time { return time.Now().UTC() }

// getSentEdocList follows documents the system sent: one item per
// recipient, from the tracking the bus keeps. With a docId, that
// document (sent by any of its agencies, through VXP or not); without,
// the latest it sent through sendEdoc.
func (s *Server) getSentEdocList(ctx context.Context, _ http.ResponseWriter, _ *http.Request, c *caller) (answer, *Error) {
	var ids []string
	if id, _ := docID(c.Params); id != "" {
		ids = []string{id}
	} else {
		recs, err := s.index.sent(ctx, c.System, s.cfg.MaxSentItems)
		if err != nil {
			return nil, classify("getSentEdocList", err)
		}
		for _, r := range recs {
			ids = append(ids, r.ID)
		}
	}
	data := []map[string]string{}
	for _, id := range ids {
		items, e := s.sentItems(ctx, c.System, id)
		if e != nil {
			if len(ids) == 1 {
				return nil, e
			}
			continue
		}
		data = append(data, items...)
	}
	a := ok("OK")
	a["data"] = data
	return a, nil
}

func (s *Server) sentItems(ctx context.Context, sys, id string) ([]map[string]string, *Error) {
	notFound := fail(CodeNotFound, "getSentEdocList: no document %s sent by an agency of system %s", id, sys)
	if !envelope.IsID(id) {
		return nil, notFound
	}
	st, err := s.c.Status(ctx, id)
	if err != nil || len(st.Recipients) == 0 {
		return nil, notFound
	}
	// Only the sender's system follows it; anyone else is told nothing.
	a, err := s.c.LookupAgency(ctx, st.Sender)
	if err := broker.Served(a, err, sys, st.Sender); err != nil {
		if errors.Is(err, failover.ErrUnavailable) {
			return nil, classify("getSentEdocList: look up agency "+st.Sender, err)
		}
		return nil, notFound
	}
	notation := ""
	if t := st.Recipients[0]; t.Seq > 0 {
		if se, err := s.c.ReadEnvelope(ctx, t.Seq); err == nil && se.Envelope != nil && se.Envelope.Document != nil {
			d := se.Envelope.Document
			notation = d.CodeNumber
			if d.CodeNotation != "" {
				notation += "/" + d.CodeNotation
			}
		}
	}
	out := make([]map[string]string, 0, len(st.Recipients))
	for _, t := range st.Recipients {
		received := ""
		for _, ev := range t.History {
			if ev.State == envelope.StateDelivered {
				received = edxml.FormatTimestamp(ev.At)
			}
		}
		sendStatus, sendDesc := "sent", "stored in the mailbox of "+t.Recipient
		if t.State == envelope.StateInvalid {
			sendStatus, sendDesc = "fail", "refused by "+t.Recipient+": "+t.Reason
		}
		out = append(out, map[string]string{
			"serviceType": "eDoc", "messageType": TypeEdoc,
			"senderDocId": id, "receiverDocId": id,
			"fromCode": st.Sender, "toCode": t.Recipient,
			"title": st.Subject, "notation": notation,
			"sentTime": edxml.FormatTimestamp(st.Created), "receivedTime": received,
			"sendStatus": sendStatus, "sendStatusDesc": sendDesc,
			"receiveStatus": t.Code, "receiveStatusDesc": describe(t),
		})
	}
	return out, nil
}

func describe(t broker.Tracking) string {
	d := string(t.State)
	if t.Reason != "" {
		d += ": " + t.Reason
	}
	return fmt.Sprintf("%s (%s)", d, edxml.FormatTimestamp(t.Updated))
}
