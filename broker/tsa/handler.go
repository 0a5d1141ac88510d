package tsa

import (
	"io"
	"net/http"
)

// Media types of RFC 3161 over HTTP (section 3.4).
const (
	QueryMediaType = "application/timestamp-query"
	ReplyMediaType = "application/timestamp-reply"
)

// ServeHTTP answers POST application/timestamp-query with
// application/timestamp-reply.
func (a *Authority) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST an application/timestamp-query", http.StatusMethodNotAllowed)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != QueryMediaType {
		http.Error(w, "want Content-Type "+QueryMediaType, http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestSize+1))
	if err != nil {
		http.Error(w, "read request: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) > MaxRequestSize {
		http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
		return
	}
	resp, err := a.Respond(body)
	if err != nil {
		http.Error(w, "time-stamp: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ReplyMediaType)
	_, _ = w.Write(resp)
}
