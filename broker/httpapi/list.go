package httpapi

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/envelope"
)

// listQuery is one GET /v1/envelopes.
type listQuery struct {
	box         broker.Box
	text        string
	from, until time.Time
	overdue     bool
	limit       int
	before      string // envelope id: list what comes after it
}

// filtered tells whether documents must be read to know if they match.
func (q *listQuery) filtered() bool {
	return q.text != "" || !q.from.IsZero() || !q.until.IsZero() || q.overdue
}

// documentList answers GET /v1/envelopes.
type documentList struct {
	Documents []*documentView `json:"documents"`
	// Total: without a filter, the documents in the box; with one, the
	// matches among the documents this call examined.
	Total int `json:"total"`
	// More: there may be more after this page; Next is the cursor for it
	// (pass it as before).
	More bool   `json:"more"`
	Next string `json:"next,omitempty"`
}

func parseListQuery(r *http.Request) (*listQuery, error) {
	v := r.URL.Query()
	q := &listQuery{box: broker.Box(v.Get("box")), text: strings.TrimSpace(v.Get("q")), before: v.Get("before")}
	if q.box == "" {
		q.box = broker.BoxAll
	}
	if q.box != broker.BoxSent && q.box != broker.BoxReceived && q.box != broker.BoxAll {
		return nil, apiError(http.StatusBadRequest, CodeBadRequest, "box=%q: want sent, received or all", q.box)
	}
	var err error
	if q.from, err = dateParam(v.Get("from"), "from", false); err != nil {
		return nil, err
	}
	if q.until, err = dateParam(v.Get("to"), "to", true); err != nil {
		return nil, err
	}
	switch o := v.Get("overdue"); o {
	case "", "false":
	case "true":
		q.overdue = true
	default:
		return nil, apiError(http.StatusBadRequest, CodeBadRequest, "overdue=%q: want true or false", o)
	}
	if q.limit, err = intParam(v.Get("limit"), "limit", 200, 1000); err != nil {
		return nil, err
	}
	if q.before != "" && !envelope.IsID(q.before) {
		return nil, apiError(http.StatusBadRequest, CodeBadRequest, "before=%q: want the 'next' value of the previous page (an envelope id)", q.before)
	}
	return q, nil
}

// listDocuments lists the documents an agency sent or received, for the
// clerks' page: filtered by text, date and box, newest first, one page at
// a time. The agency's tracking keys are listed (keys only, no values),
// and only the documents the page needs are read: every one of them
// without a filter, at most Limits.ListScan with one.
func (s *Server) listDocuments(w http.ResponseWriter, r *http.Request, agency string) {
	ctx := r.Context()
	q, err := parseListQuery(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	refs, err := s.c.DocumentIndex(ctx, agency, q.box)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	start := 0
	if q.before != "" {
		start = sort.Search(len(refs), func(i int) bool { return refs[i].ID < q.before })
	}
	budget := q.limit
	if q.filtered() {
		budget = max(q.limit, s.limits.ListScan)
	}
	var names map[string]string
	if q.text != "" {
		names = s.agencyNames(ctx)
	}
	out := documentList{Documents: []*documentView{}}
	i := start
	for ; i < len(refs); i++ {
		// Stop at a page boundary only between envelope ids: the cursor
		// is an id, so the rows of one id (sent and received under a
		// reused id) go on one page.
		if i > start && refs[i].ID != refs[i-1].ID && (len(out.Documents) >= q.limit || i-start >= budget) {
			break
		}
		d, err := s.documentRow(ctx, agency, refs[i])
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if d != nil && q.match(d, names) {
			out.Documents = append(out.Documents, d)
		}
	}
	if i < len(refs) {
		out.More, out.Next = true, refs[i-1].ID
	}
	out.Total = len(out.Documents)
	if !q.filtered() {
		out.Total = len(refs)
	}
	writeJSON(w, http.StatusOK, out)
}

// documentRow reads one document of a list: the agency's own pairs and
// its own copy, as access does for one envelope. It returns nil when
// nothing in them is the agency's to see.
func (s *Server) documentRow(ctx context.Context, agency string, ref broker.DocumentRef) (*documentView, error) {
	pairs, err := s.c.LoadDocument(ctx, ref)
	if err != nil {
		return nil, err
	}
	var a *access
	if ref.Role == "sender" {
		list := make([]broker.Tracking, 0, len(pairs))
		for _, t := range pairs {
			list = append(list, *t)
		}
		if a, err = s.ownView(ctx, agency, ref.ID, "sender", list); err != nil {
			return nil, err
		}
	} else {
		// One pair per sender; more than one only under a reused id.
		for _, t := range pairs {
			if a, err = s.ownView(ctx, agency, ref.ID, "recipient", []broker.Tracking{*t}); err != nil || a != nil {
				break
			}
		}
		if err != nil {
			return nil, err
		}
	}
	if a == nil || len(a.status.Recipients) == 0 {
		return nil, nil
	}
	first := a.status.Recipients[0]
	d := &documentView{ID: ref.ID, Kind: first.Kind, Subject: first.Subject, Sender: a.status.Sender, Created: first.Created,
		DueDate: first.DueDate, Role: a.role, Attachments: []attachmentView{}, Recipients: []recipientView{}}
	if se := a.copy; se.Envelope != nil {
		d.Document, d.Verified = se.Envelope.Document, se.Verified()
		if se.Err != nil {
			d.VerificationError = se.Err.Error()
		}
		for _, at := range se.Envelope.Attachments {
			d.Attachments = append(d.Attachments, attachmentView{Attachment: at, URL: attachmentURL(ref.ID, at.Name)})
		}
	}
	for _, t := range a.status.Recipients {
		d.Recipients = append(d.Recipients, recipientView{Agency: t.Recipient, State: t.State, Code: t.Code, Updated: t.Updated, Overdue: t.Overdue, Reason: t.Reason})
		d.Overdue = d.Overdue || t.Overdue
	}
	sort.Slice(d.Recipients, func(i, j int) bool { return d.Recipients[i].Agency < d.Recipients[j].Agency })
	return d, nil
}

// match applies the filters to a document read.
func (q *listQuery) match(d *documentView, names map[string]string) bool {
	switch {
	case !q.from.IsZero() && d.Created.Before(q.from),
		!q.until.IsZero() && !d.Created.Before(q.until),
		q.overdue && !d.Overdue:
		return false
	case q.text != "":
		return strings.Contains(searchText(d, names), fold(q.text))
	}
	return true
}

// searchText is what a search matches: subject, number and notation (số,
// ký hiệu), id, and the agencies by code and name.
func searchText(d *documentView, names map[string]string) string {
	var b strings.Builder
	b.WriteString(d.Subject + "\n" + d.ID + "\n" + d.Sender + "\n" + names[d.Sender] + "\n")
	if doc := d.Document; doc != nil {
		b.WriteString(doc.CodeNumber + "/" + doc.CodeNotation + "\n" + doc.CodeNotation + "\n" + doc.TypeName + "\n")
	}
	for _, r := range d.Recipients {
		b.WriteString(r.Agency + "\n" + names[r.Agency] + "\n")
	}
	return fold(b.String())
}

func (s *Server) agencyNames(ctx context.Context) map[string]string {
	list, _ := s.c.Agencies(ctx)
	names := make(map[string]string, len(list))
	for _, a := range list {
		names[a.Code] = a.Name
	}
	return names
}

// vnZone: dates a clerk types are calendar days in Vietnam.
var vnZone = time.FixedZone("ICT", 7*3600)

func dateParam(v, name string, endOfDay bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.ParseInLocation("2006-01-02", v, vnZone)
	if err != nil {
		return time.Time{}, apiError(http.StatusBadRequest, CodeBadRequest, "%s=%q: want a date YYYY-MM-DD", name, v)
	}
	if endOfDay {
		t = t.AddDate(0, 0, 1)
	}
	return t, nil
}

func intParam(v, name string, def, maxV int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxV {
		return 0, apiError(http.StatusBadRequest, CodeBadRequest, "%s=%q: want a number from 1 to %d", name, v, maxV)
	}
	return n, nil
}
