// Package audit makes the docaxis record tamper-evident and lets an auditor
// replay it and carry it away as evidence that verifies offline.
//
// Three parts:
//
//   - The Chainer runs inside `docaxis serve`. It reads stream AXIS in stream
//     order and appends one Link per record to stream AXIS_AUDIT (subject
//     axis.audit.link). A link holds the record's stream sequence, stored
//     time, subject and SHA-256, the hash of the previous link and its own
//     hash, so a changed, removed, inserted or reordered record breaks the
//     chain at a point verification names. At an interval and at shutdown it
//     signs a Checkpoint of the chain head with the bus's own audit key (a
//     certificate from the bus CA that binds no agency) and records it on
//     axis.audit.checkpoint.
//   - The Reader replays the record by time and agency from a start time
//     (the server seeks there; nothing before it is read), re-verifies every
//     signature and certificate chain in parallel while keeping stream
//     order, and checks each record against its link. A record is judged
//     as the recipient's mailbox judged it: at the time the bus recorded it
//     (for a copy from another bus, when the sender's bus did), with the
//     mailbox's window for the envelope's created time, and the chain and
//     revocations at that created time. It also writes evidence bundles
//     (Export).
//   - VerifyBundle checks a bundle offline, with no server: file digests,
//     record digests against links, chain continuity, checkpoint signatures,
//     every record's JWS and certificate chain judged as the Reader judges
//     it (the links carry the recorded times), completeness of the range
//     and coverage by a checkpoint. It bounds what it reads (VerifyLimits),
//     since a bundle comes from outside. The format is described in
//     BUNDLE.md so that an outside auditor can check it with openssl and any
//     JOSE library.
//
// Replay and export use ephemeral ordered consumers: they never touch the
// durable consumers of mailboxes, status boxes or the tracker.
package audit
