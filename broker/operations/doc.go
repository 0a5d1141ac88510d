// Package operations holds the operator's actions on a bus: register an
// agency (issue or import its key, or serve it by a document system),
// revoke an agency's certificate, register a document system, and, on the
// national bus, admit a member bus to the federation. The CLI (docaxis
// agency add/revoke, system add, federation member add) and the HTTP API
// where it offers them (the compatibility API's registerAgency) call the
// same functions, so that an action checks and writes the same things
// whatever its entry point.
//
// An Operator works from the bus's home: its keystore (the CA that issues
// keys and signs system bindings) and, on a bus with authentication, its
// NATS authority (credentials). The directory write itself checks what
// every registration must respect (broker.Client.RegisterAgency: the
// entry, and in a federation the code bindings); the actions here add what
// the operator's home holds: keys, certificates, credentials, secrets.
package operations
