// Package httpapi serves the bus over HTTP for document systems written
// in any language, and the clerks' web page, from one http.Handler.
//
// Every request under /v1 carries "Authorization: Bearer TOKEN", a
// per-agency token made by `docaxis agency token CODE` and kept (hashed) in
// the AXIS_TOKENS bucket; an agency sees only its own mailbox and the
// documents it sent or received. Errors are JSON {"error": ..., "code": ...}
// with the stable codes of ErrorCode. The API is described by the OpenAPI 3
// document served at /v1/openapi.json (openapi.json in this directory).
//
// The server signs what it sends and receipts what it acknowledges with
// the agency's own key, which its broker.Client loads (broker.WithKeystore);
// a DMS that signs itself posts the signed envelope instead, which is
// verified and forwarded unchanged.
package httpapi
