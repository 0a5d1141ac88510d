// Package record owns the schema of what the bus stores: the names of its
// streams, buckets and durable consumers, the subjects of the record and
// their one parser, the formulas of its KV keys and message ids, the
// headers it sets, and the one writer of the quarantine.
//
// Every package that reads or writes the bus's state takes these names
// from here, so that a name is spelt once and a subject is parsed one way.
// The package depends on envelope (agency codes and their subject tokens)
// and nats.go only, so broker and every package beside it can import it.
//
// Layout on JetStream:
//
//	stream AXIS            axis.doc.<to>.<from>             one copy of an envelope per recipient
//	                       axis.status.<sender>.<reporter>  receipts and statuses
//	stream AXIS_QUARANTINE axis.quarantine.<agency>         messages that could not be processed, with the reason
//	KV AXIS_TRACK          <sender>.<envelope>.<recipient> -> the latest tracking state
//	KV AXIS_IDS            <envelope> -> the sender of its first verified copy
//	KV AXIS_DIRECTORY      agency.<code> -> the agency, fedbus.<bus> -> a bus of the federation
//	                       and the codes bound to it (codes.go), and the bus-wide entries
//	KV AXIS_RECEIVED       <recipient>.<envelope> -> when it was handed to the application
//	KV AXIS_FILEREFS       <sha256>.<agency>[.up] -> who may read an attachment
//
// and, on buses that take part in a federation (federation.go): streams
// AXIS_FED_OUT, AXIS_FED_RELAY, AXIS_FED_IN, AXIS_FED_DIR and
// AXIS_FED_FROM_<member>, KV AXIS_FED_INFLIGHT.
//
// Agency codes become subject tokens through envelope.Token.
package record
