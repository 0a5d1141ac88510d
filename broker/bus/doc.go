// Package bus is the bus's server side: what `docaxis serve` runs and no
// agency does. It starts the embedded NATS server, sets up the streams and
// buckets of the record, and runs the bus's services: the tracker (the
// only writer of the tracking state, from verified copies and statuses),
// the tracking, quarantine and system services agencies and document
// systems reach by request, and the rate gate.
//
// The agencies' client library is package broker; bus builds on it and
// broker never imports bus, so a document system's program links none of
// the server. The names on the wire (streams, buckets, subjects, headers,
// service subjects) are package record's, shared by both sides.
package bus
