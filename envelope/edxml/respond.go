package edxml

import "github.com/docaxis/docaxis/envelope"

// SetResponseFor fills a status envelope's edXML ResponseFor from the
// document it answers (its code, promulgation date and, when it came from
// edXML, its DocumentId), so that the status written back names the
// document the way the recipient's edXML system knows it.
func SetResponseFor(st, doc *envelope.Envelope) {
	if st.Extra == nil {
		st.Extra = map[string]string{}
	}
	d := doc.Document
	if d == nil {
		return
	}
	if d.CodeNumber != "" || d.CodeNotation != "" {
		st.Extra[KeyResponseForCode] = d.CodeNumber + "/" + d.CodeNotation
	}
	if d.PromulgationDate != "" {
		st.Extra[KeyResponseForPromulgationDate] = d.PromulgationDate
	}
	if d.DocumentID != "" {
		st.Extra[KeyResponseForDocumentID] = d.DocumentID
	}
}
