// Package vxp serves the national document-exchange axis's own API, as
// VNPT's Java SDK "SDKVXP" 2.0.1 speaks it (../shared/vxp/PROTOCOL.md), so
// that a document-management system built on it moves to docaxis by
// changing three settings: endpoint (http://HOST:8080/vxp), systemId and
// secret.
//
// Every request is authenticated with the HMAC-SHA256 of its signed header
// (auth.go) under the shared secret of a document system (docaxis system
// add / secret). The server acts for that system through the bus's own
// client: it signs for the agencies the system serves with the system's
// key, and receives for them through the one receive path
// (broker.Client.Acknowledge).
//
// One file per concept: auth.go (signature), headers.go (the lenient
// parameter decoding), agencies.go, send.go, calls.go (a signed sendEdoc
// call sends once), receive.go (the received list, getEdoc,
// updateStatus), index.go (what waits for each system), sent.go, status
// codes and answers in answer.go, the server in server.go.
package vxp
