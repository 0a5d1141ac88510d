package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/failover"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/docaxis/docaxis/storage"
	"github.com/nats-io/nats.go"
)

// ErrorCode is the stable, machine-readable part of an error answer.
type ErrorCode string

// Error codes. Programs branch on these, never on the message.
const (
	CodeUnauthorized     ErrorCode = "unauthorized"           // 401: no, bad or revoked token
	CodeForbidden        ErrorCode = "forbidden"              // 403: the agency may see it but not do that
	CodeNotFound         ErrorCode = "not_found"              // 404: no such thing for this agency
	CodeMethodNotAllowed ErrorCode = "method_not_allowed"     // 405
	CodeBadRequest       ErrorCode = "bad_request"            // 400: malformed request (JSON, parts, parameters)
	CodeUnsupportedMedia ErrorCode = "unsupported_media_type" // 415
	CodeTooLarge         ErrorCode = "too_large"              // 413: request, attachment or attachment count over the limit, or over the bus's limits
	CodeRateLimited      ErrorCode = "rate_limited"           // 429: over the request rate or the bus's publish rate (see Retry-After)
	CodeInvalidEnvelope  ErrorCode = "invalid_envelope"       // 422: the envelope fails validation or verification
	CodeUnknownAgency    ErrorCode = "unknown_agency"         // 422: a recipient is not on this bus
	CodeInactiveAgency   ErrorCode = "inactive_agency"        // 422: a recipient takes no mail (suspended, deleted, or its bus left the federation)
	CodeNoIdentity       ErrorCode = "no_identity"            // 422: the server holds no key to sign for the agency
	CodeConflict         ErrorCode = "conflict"               // 409: state change not allowed from the current state
	CodeIDTaken          ErrorCode = "id_taken"               // 409: the envelope id belongs to another sender
	CodeTimeout          ErrorCode = "timeout"                // 408: the request body came too slowly
	CodeTooManyStreams   ErrorCode = "too_many_streams"       // 429: too many event streams open with this token
	CodeUnavailable      ErrorCode = "unavailable"            // 503: bus or store unreachable, or shutting down
	CodeInternal         ErrorCode = "internal"               // 500
)

// Error is an API error: an HTTP status, a stable code and a message
// saying what is wrong.
type Error struct {
	Status  int       `json:"-"`
	Message string    `json:"error"`
	Code    ErrorCode `json:"code"`
	Err     error     `json:"-"`
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.Err }

func apiError(status int, code ErrorCode, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// TooLargeError is returned when a request goes over a limit.
type TooLargeError struct {
	What  string
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s is over the limit of %d bytes", e.What, e.Limit)
}

// classify turns any error into the answer the client gets.
func classify(err error) *Error {
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	var mbe *http.MaxBytesError
	var tle *TooLargeError
	var sbe *SlowBodyError
	switch {
	case errors.As(err, &sbe):
		return &Error{Status: http.StatusRequestTimeout, Code: CodeTimeout, Message: sbe.Error(), Err: err}
	case errors.Is(err, broker.ErrIDTaken):
		return &Error{Status: http.StatusConflict, Code: CodeIDTaken, Message: err.Error(), Err: err}
	case errors.As(err, &mbe):
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Err: err,
			Message: fmt.Sprintf("request body is over the limit of %d bytes", mbe.Limit)}
	case errors.As(err, &tle):
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Message: tle.Error(), Err: err}
	case errors.Is(err, broker.ErrNotFound), errors.Is(err, broker.ErrNotRecipient):
		return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: err.Error(), Err: err}
	case errors.Is(err, broker.ErrUnknownAgency):
		return &Error{Status: http.StatusUnprocessableEntity, Code: CodeUnknownAgency, Message: err.Error(), Err: err}
	case errors.Is(err, broker.ErrInactive), errors.Is(err, broker.ErrWithdrawn):
		return &Error{Status: http.StatusUnprocessableEntity, Code: CodeInactiveAgency, Message: err.Error(), Err: err}
	case errors.Is(err, signing.ErrNoIdentity):
		return &Error{Status: http.StatusUnprocessableEntity, Code: CodeNoIdentity, Err: err,
			Message: err.Error() + " (post an envelope the DMS signed itself, part 'signed')"}
	case errors.Is(err, envelope.ErrTransition), errors.Is(err, broker.ErrDuplicate):
		return &Error{Status: http.StatusConflict, Code: CodeConflict, Message: err.Error(), Err: err}
	case errors.Is(err, envelope.ErrUnknownState):
		return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: err.Error(), Err: err}
	case errors.Is(err, storage.ErrUnavailable), errors.Is(err, broker.ErrTimestamping), errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrNoResponders), errors.Is(err, context.DeadlineExceeded), errors.Is(err, broker.ErrRecordUnread),
		errors.Is(err, failover.ErrUnavailable):
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: err.Error(), Err: err}
	case errors.Is(err, broker.ErrUnverified), errors.Is(err, broker.ErrAttachment),
		errors.Is(err, envelope.ErrInvalid), errors.Is(err, envelope.ErrInvalidCode),
		errors.Is(err, envelope.ErrMalformed), errors.Is(err, envelope.ErrTooLarge),
		errors.Is(err, envelope.ErrBadSignature), errors.Is(err, envelope.ErrUnsigned),
		errors.Is(err, signing.ErrUntrusted), errors.Is(err, signing.ErrExpired),
		errors.Is(err, signing.ErrRevoked), errors.Is(err, signing.ErrAgencyMismatch):
		return &Error{Status: http.StatusUnprocessableEntity, Code: CodeInvalidEnvelope, Message: err.Error(), Err: err}
	// After ErrUnverified: a copy the bus refused for its sender's rate is
	// refused for good, not this request for now.
	case errors.Is(err, broker.ErrRateLimited):
		// Before ErrLimit, which it wraps: the same request passes later.
		return &Error{Status: http.StatusTooManyRequests, Code: CodeRateLimited, Message: err.Error(), Err: err}
	case errors.Is(err, broker.ErrLimit):
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Message: err.Error(), Err: err}
	}
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: err.Error(), Err: err}
}

// writeError answers with e as JSON.
func writeError(w http.ResponseWriter, e *Error) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	switch e.Status {
	case http.StatusUnauthorized:
		h.Set("WWW-Authenticate", `Bearer realm="docaxis"`)
	case http.StatusRequestTimeout:
		h.Set("Connection", "close") // the rest of the body is not worth waiting for
	case http.StatusServiceUnavailable:
		if h.Get("Retry-After") == "" {
			h.Set("Retry-After", "5")
		}
	}
	w.WriteHeader(e.Status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(e)
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
