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
// national issued for that member (auth.Authority.LeafCreds). The leaf binds
// the member's AXIS account to the national's; the user's permissions
// (auth.LeafPermissions) let through only the member's federation links
// and the few JetStream API calls durable stream sourcing makes on the
// member's own consumers. The record, the services, the inboxes never
// cross a link (both sides deny them too).
//
// # Flow
//
// Agencies send as before: broker.Client.Send stores one copy per
// recipient in the sender's bus record (stream AXIS, axis.doc.<to>.<from>),
// remote recipients included, so the sender's bus keeps on record all
// its agencies sent. The federation service of that bus (inside `docaxis
// serve`) follows the record (consumer fed_forward) and, for a copy whose
// recipient is served by another bus, checks the signature, puts the
// attachments and then the copy, with the bus's signed trace entry, into
// its outbound stream:
//
//	origin bus    AXIS ──fed_forward──▶ AXIS_FED_OUT   axis.fedout.<dest>.doc.<to>.<from>
//	                                                   axis.fedout.<dest>.status.<sender>.<reporter>
//	                                                   axis.fedout.<dest>.file.<envelope>.<sha256>  (512 KiB parts)
//	                                                   axis.fedout.<national>.dir.agency|crl.<key>  (members)
//	national      AXIS_FED_FROM_<member>  sources the member's AXIS_FED_OUT across domains
//	              (durable consumer fed_uplink on the member, delivered to axis.fedlink.<member>.up)
//	              ──fed_relay──▶ AXIS_FED_RELAY          axis.fedrelay.<dest>.…  (+ the national's trace entry)
//	destination   AXIS_FED_IN  sources the national's AXIS_FED_RELAY for <dest>
//	              (durable consumer fed_down_<dest> on the national, to axis.fedlink.<dest>.down)
//	              ──fed_ingest──▶ AXIS   axis.doc.<to>.<from> (+ the destination's trace entry)
//
// The national's own outbound stream goes through the same relay, and it
// ingests what its relay holds for itself. Statuses flow back the same way:
// the recipient's receipt is stored in the destination's record (where its
// tracker follows the copy too), forwarded because its addressee (the
// sender) is served elsewhere, and ingested into the sender's record, where
// the tracker applies it and `docaxis status` shows it.
//
// Store and forward is JetStream's: a message waits in the stream of the
// side that holds it while a link or a bus is down. Sourcing uses durable
// consumers acknowledged by flow control, so it resumes where it stopped,
// and each side's backlog is the consumer's pending count even while the
// link is down. Every hop publishes with the copy's message id (the
// envelope id and recipient, as a local send does), so a repeated hop is a
// duplicate JetStream drops, and a message is acknowledged only once what
// it caused is stored.
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
// sender's bus recorded it; every trace entry verifies against the CA of
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
// them against the member's CA and writes them into its directory; every
// member sources the national directory (durable consumer fed_dir_<member>
// into AXIS_FED_DIR) and copies in other buses' entries. Entries only
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
