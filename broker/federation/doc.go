// Package federation links docaxis buses: each province or ministry runs
// its own bus for its own agencies, and every bus connects to the national
// bus, so that an agency on any bus reaches an agency on any other with the
// same send as a local one.
//
// # Topology
//
// Each bus runs JetStream in its own domain (the bus id), so linked buses
// keep separate JetStream systems. The national bus listens for NATS leaf
// node connections; a member connects one to it with credentials the
// national issued for that member (auth.Authority.LeafCreds). On the
// national the leaf lands in the member's own link account, never in AXIS:
// an account per member, signed by the national's operator, that imports
// and exports nothing, takes one leaf connection at a time, holds within a
// JetStream quota only that member's link, and whose users the national can
// revoke (auth.Authority.RevokeLeaf). The national's AXIS account takes no
// leaf connection at all, so agency and bus credentials cannot link, and
// nothing a member sends reaches AXIS, its JetStream ack subjects or
// another member's link except through the national's federation service.
// The user's permissions (auth.LeafPermissions) still let through only the
// member's link traffic. The record, the services, the inboxes never cross
// a link (both sides deny them too).
//
// # Flow
//
// Agencies send as before: broker.Client.Send stores one copy per
// recipient in the sender's bus record (stream AXIS, axis.doc.<to>.<from>),
// remote recipients included, so the sender's bus keeps on record all
// its agencies sent. The federation service of that bus (inside `docaxis
// serve`) follows the record (consumer fed_forward) and, for a copy whose
// recipient is served by another bus, checks the signature, puts the copy,
// with the bus's signed trace entry, and then its attachments into its
// outbound stream:
//
//	origin bus    AXIS ──fed_forward──▶ AXIS_FED_OUT   axis.fedout.<dest>.doc.<to>.<from>
//	                                                   axis.fedout.<dest>.status.<sender>.<reporter>
//	                                                   axis.fedout.<dest>.file.<envelope>.<sha256>  (512 KiB parts)
//	                                                   axis.fedout.<national>.dir.agency|crl.<key>  (members)
//	national      pulls the member's AXIS_FED_OUT over the link (consumer fed_up on the member,
//	              from the national's connection in the member's link account)
//	              ──relay──▶ AXIS_FED_RELAY             axis.fedrelay.<dest>.<origin>.…  (+ the national's trace entry)
//	              ──fed_link_<dest>──▶ the destination's link account: AXIS_FED_RELAY (its queue)
//	destination   AXIS_FED_IN  sources its queue on the national
//	              (durable consumer fed_down_<dest> there, to axis.fedlink.<dest>.down)
//	              ──fed_ingest_<origin>──▶ AXIS   axis.doc.<to>.<from> (+ the destination's trace entry)
//
// The national's own outbound stream goes through the same relay, and it
// takes in what its relay holds for itself. Statuses flow back the same
// way: the recipient's receipt is stored in the destination's record
// (where its tracker follows the copy too), forwarded because its
// addressee (the sender) is served elsewhere, and taken into the sender's
// record, where the tracker applies it and `docaxis status` shows it.
//
// Store and forward is JetStream's: a message waits in the stream of the
// side that holds it while a link or a bus is down. The national pulls
// what a member sends at its own pace, in bounded batches, and stores it
// only once verified: a member cannot push at it more than it takes. It
// passes a file part on only for an attachment of an envelope it relayed
// from that member to that destination, at its place in it, so a member
// can pass nothing else through it, nor more bytes than its agencies'
// signed envelopes declare. What waits for a member sits in its queue,
// within its quota, and beyond that in the relay. Every bus takes in each
// other bus's traffic through a consumer of its own, so one bus whose
// messages wait (for attachments that never come, say) holds up no other;
// a copy whose attachment has not come in AttachmentWait after it arrived
// is quarantined with the reason. Every federation stream has age, size
// and count limits. Each side's backlog is a consumer's pending count,
// even while the link is down. Every hop publishes with the copy's message
// id (the envelope id and recipient, as a local send does), so a repeated
// hop is a duplicate JetStream drops, and a message is acknowledged only
// once what it caused is stored.
//
// # End to end
//
// The envelope bytes are never touched: the sender's signature is checked
// at every hop. Each bus the copy crosses appends a trace entry (Hop): a
// JWS by the bus's own key (certificate from the bus's CA, binding
// urn:docaxis:bus:<id>) over the bus id, the time, the envelope digest, the
// copy id and the digest of the previous entry, like the TraceHeaderList of
// edXML. They travel as repeated Docaxis-Trace headers and stay on the
// copy stored in the destination's record, for the audit.
//
// At the national and at the destination a copy is refused (quarantined
// under axis.quarantine.federation with the reason) unless: the envelope
// verifies against the CA of the sender's bus only, at the time the
// sender's bus recorded it as the receiving bus believes it (the first
// trace entry's time, but no earlier than MaxLinkOutage before the next
// bus that saw the copy: a bus cannot date its agencies' envelopes back
// past their revocation); every trace entry verifies against the CA of
// its own bus and chains to the one before; the first entry is by the bus
// the directory says serves the sender, and at the national by the member
// whose stream it came from; at the destination the last is the
// national's; and the addressee is served by the destination. An agency of
// bus A thus cannot send as an agency of bus B, nor can bus A's CA make up
// certificates for B's agencies.
//
// # Directory and trust
//
// An agency registers on its own bus (broker.Agency.Bus is the bus id). A
// member announces its agencies and CRLs to the national, which checks
// them against the member's CA and writes them into its directory; the
// national passes the directory's entries on (memberDirKeys) into each
// member's link account, which every member sources (durable consumer
// fed_dir_<member> into AXIS_FED_DIR) to copy in other buses' entries. Entries only
// flow from their owner, so nothing loops.
//
// Trust is anchored at the national operator: `docaxis federation member
// add ID --ca FILE` on the national lists the member (directory key
// fedbus.<id>) with the CA certificate its operator handed over, after
// checking its fingerprint out of band; the national lists itself. Each
// bus trusts exactly these CAs, each for its own bus's agencies and bus
// certificate, and publishes them to its clients as approved roots
// (directory keys fedroot.<fingerprint>).
//
// Each bus speaks only for itself. A CA is known by its key
// (signing.KeyID), not its name; each CA's CRL is kept under crl.<key id>
// and revokes only that CA's certificates; the national accepts a member's
// CRL only when the member's CA signed it, under that CA's key, and never
// an older one.
//
// # Codes and membership
//
// Agency codes belong to buses: the national binds code patterns to each
// bus (BusEntry.Codes, see ParseCodePattern), bindings never overlap, and
// the national accepts a member's agency only inside its binding. The
// binding, not the order of arrival, decides: an entry that falls outside
// the bindings (registered before a binding, or while a link was down) is
// withdrawn, and the bus the code is bound to announces and takes it; a
// member drops its own entry of a code the national lists for the bus it
// is bound to. A member leaves through RemoveBus: its CAs are withdrawn from
// that time (crl.<key id>.withdrawn, so what it signed before still
// verifies), its agencies stay listed, marked withdrawn (senders get
// broker.ErrWithdrawn), the national stops its link and its link
// credentials are revoked (auth.Authority.RevokeLeaf). RekeyBus replaces a
// member's CA, withdrawing the old one from a given time.
package federation
