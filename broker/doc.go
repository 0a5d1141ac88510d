// Package broker is the agencies' client library: send, receive (the
// per-agency mailboxes, signed receipts and statuses), status and watch
// (the tracking state clerks look at), the agency directory and the
// quarantine. What only the bus runs (the embedded server, the set-up of
// the streams, the tracker and the services agencies reach by request) is
// package broker/bus, which builds on this one; broker never imports it.
//
// Layout on JetStream (the names are package record's):
//
//	stream AXIS            axis.doc.<to>.<from>        one copy of an envelope per recipient
//	                       axis.status.<sender>.<reporter>  receipts and statuses
//	stream AXIS_QUARANTINE axis.quarantine.<agency>    messages that could not be processed, with the reason (written by the bus only)
//	KV AXIS_TRACK          <sender>.<envelope>.<recipient> -> Tracking (latest state, with history), made by verified copies only
//	KV AXIS_IDS            <envelope> -> the sender of its first verified copy
//	KV AXIS_DIRECTORY      agency.<code> -> Agency, root.<fingerprint> -> CA certificate
//	KV AXIS_RECEIVED       <recipient>.<envelope> -> when it was handed to the application
//	KV AXIS_RATE           refused.<record seq> -> why the bus refused a copy for the publish rate; floor
//	object store AXIS_FILES   attachments (embedded store)
//	service axis.svc.track.<agency>.<op>  an agency's tracking, from its own pairs (bus/tracksvc.go)
//	events  axis.evt.track.<agency>       changes of an agency's pairs
//
// Bus services agencies reach by request: axis.svc.quarantine.<agency>
// (quarantine a copy of one's own mailbox; the rate verdict of a copy) and
// axis.svc.files.<agency>.<op> (attachments).
//
// Agency codes become subject tokens through envelope.Token.
package broker
