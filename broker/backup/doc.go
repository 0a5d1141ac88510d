// Package backup writes a running bus to one archive and restores it into
// a fresh home.
//
// An archive is a tar file: a small header (format version) first, then
// the home's files (CA, keys, credentials; not its data/ directory), a
// JetStream snapshot of every stream of the bus (the record, the
// quarantine, the audit chain, every KV bucket and the embedded attachment
// store, with their consumers: each agency's mailbox keeps its place), the
// objects of an external attachment store (S3), and last a manifest that
// lists every entry with its size and SHA-256, sealed with its own (it
// holds the streams' configuration). A truncated archive lacks the
// manifest; a damaged one fails a digest. Restore checks all of it
// before it writes anything. An archive may be encrypted to age
// recipients as a whole (encrypt.go); Open reads either kind. Its manifest
// may be signed by the bus's audit key (signature.go), which a restore
// given the bus's CA requires.
//
// One point in time: the record (stream AXIS) is the point. What is
// derived from the record (the audit chain, tracking, envelope ids,
// idempotent receipts, the quarantine) is snapshotted before it, so it
// never runs ahead of it; what the record depends on (the directory of
// agencies and certificates, attachment access, attachments, tokens) is
// snapshotted after it, so nothing on the record lacks them. On restore
// the tracker's consumer is removed: the first serve rebuilds tracking
// from the restored record by verifying every message again, and the
// audit chainer links the records the chain had not reached.
package backup
