package federation

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
)

// Streams, consumers and subjects of the federation (see doc.go).
const (
	// OutStream, on every bus, holds what leaves it: copies for other buses
	// with the bus's trace entry, their attachments, and (members) the
	// bus's directory announcements.
	OutStream = record.FedOutStream
	// RelayStream, on the national bus, holds what the national relayed,
	// per destination bus, with its own trace entry.
	RelayStream = record.FedRelayStream
	// InStream, on a member, sources from the national's relay what is
	// addressed to this bus.
	InStream = record.FedInStream
	// DirStream, on a member, sources the national's directory.
	DirStream = record.FedDirStream
	// fromPrefix + member names the national's stream sourcing a member's
	// OutStream: the stream a message sits in tells which bus sent it.
	fromPrefix = record.FedFromStreamPrefix

	kvDirectoryStream = record.KVStreamPrefix + record.DirectoryBucket

	uplinkConsumer       = record.FedUplinkConsumer     // pull, on a member's OutStream: the national takes from it over the link
	legacyUplinkConsumer = "fed_uplink"                 // push, before: the national's sourcing (migrated to fed_up)
	forwardConsumer      = "fed_forward"                // on AXIS: copies for other buses
	relayConsumer        = "fed_relay"                  // national: on its own OutStream (and a legacy AXIS_FED_FROM_<member>)
	ingestConsumer       = "fed_ingest"                 // legacy: messages relayed before the relay subjects named their origin
	ingestPrefix         = "fed_ingest_"                // + origin bus: one ingest per origin, on InStream (member) or RelayStream (national)
	dirsyncConsumer      = "fed_dirsync"                // member: on DirStream
	downPrefix           = record.FedDownConsumerPrefix // national: in a member's link account, on its queue (sourced by the member)
	dirDownPrefix        = record.FedDirConsumerPrefix  // national: in a member's link account, on its directory copy
	linkCopyPrefix       = "fed_link_"                  // national: on RelayStream, one per member, copying into its queue

	// inflightBucket, on the national bus, remembers the attachments of the
	// envelopes it relayed (origin.envelope.sha256.destination → size): a
	// file part is relayed only for one of them.
	inflightBucket = record.FedInflightBucket

	outPrefix   = "axis.fedout."
	relayPrefix = "axis.fedrelay."
	linkPrefix  = record.FedLinkSubjectPrefix

	// StatusSubject answers `docaxis federation status` (bus credentials
	// only: agencies may not publish there, and it never crosses a link).
	StatusSubject = "axis.svc.federation.status"

	// busKeyPrefix + bus id: a BusEntry in the directory.
	busKeyPrefix = record.DirectoryBusPrefix

	// quarantineAgency is the quarantine box of messages the federation
	// refused (axis.quarantine.federation).
	quarantineAgency = record.FederationBox
)

// Message headers set by the federation.
const (
	// HeaderTrace holds one signed trace entry per bus the message crossed,
	// in order (a compact JWS each; see Hop).
	HeaderTrace = record.HeaderTrace
	// HeaderOriginBus names the bus the message entered the federation at
	// (informational: the first trace entry is what counts).
	HeaderOriginBus = record.HeaderOriginBus
	// HeaderChunk is "i/n" on the n messages carrying an attachment.
	HeaderChunk    = "Docaxis-File-Chunk"
	HeaderFileSize = "Docaxis-File-Size"
	HeaderFileType = "Docaxis-File-Type"
	// HeaderDirOp is "delete" on a directory announcement removing an entry.
	HeaderDirOp = "Docaxis-Dir-Op"
	// HeaderOriginStream names the stream a quarantined federation message
	// was taken from.
	HeaderOriginStream = record.HeaderOriginStream
)

// uplinkOriginPrefix + member is the origin stream of a quarantine entry
// for a message the national pulled from member over its link: no stream
// of the national keeps it (the member's OutStream is the member's), so
// the entry is the message, and a retry hands the entry itself to the
// relay, which checks it end to end as the first time.
const uplinkOriginPrefix = "link:"

func uplinkOrigin(member string) string { return uplinkOriginPrefix + member }

// Message kinds in federation subjects.
const (
	kindDoc    = record.KindDoc
	kindStatus = record.KindStatus
	kindFile   = "file"
	kindDir    = "dir"
)

var busIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$`)

// CheckBusID checks that id can name a bus: it becomes a JetStream domain,
// a subject token and part of stream names.
func CheckBusID(id string) error {
	if !busIDPattern.MatchString(id) {
		return fmt.Errorf("%w: %q: want 1 to 32 letters, digits, '-' or '_', starting with a letter or digit", ErrBusID, id)
	}
	return nil
}

// fromStream is the national's stream holding what member sent up.
func fromStream(member string) string { return record.FedFromStream(member) }

func linkSubject(member, dir string) string { return linkPrefix + member + "." + dir }

// memberDirKeys are the directory keys (prefixes) the national bus passes
// on to its members: the entries each member copies in (dirsync).
var memberDirKeys = []string{record.DirectoryAgencyPrefix, busKeyPrefix, broker.CRLPrefix}

// fedSubject is a parsed federation subject:
//
//	<prefix><dest>.doc.<to>.<from>
//	<prefix><dest>.status.<sender>.<reporter>
//	<prefix><dest>.file.<envelope>.<sha256>
//	<prefix><dest>.dir.agency.<code token> | <prefix><dest>.dir.crl.<issuer hash>
//
// On the national's relay the bus the message came from follows the
// destination (axis.fedrelay.<dest>.<origin>.doc.<to>.<from>), so that each
// bus takes in what every other bus sends through a consumer of its own:
// one origin cannot hold up the others. Relay subjects without it are
// those of an earlier version, still in the streams.
type fedSubject struct {
	Dest string
	// Origin is the bus the national took the message from (relay only).
	Origin string
	Kind   string
	// A and B are agency codes for doc and status; envelope id and SHA-256
	// for file; entry kind and key token for dir.
	A, B string
}

func (f fedSubject) subject(prefix string) string {
	a, b := f.A, f.B
	if f.Kind == kindDoc || f.Kind == kindStatus {
		a, b = envelope.Token(a), envelope.Token(b)
	}
	dest := f.Dest
	if f.Origin != "" {
		dest += "." + f.Origin
	}
	return prefix + dest + "." + f.Kind + "." + a + "." + b
}

// relayFilter is the relay subjects for dest from origin ("": those of an
// earlier version, which name no origin).
func relayFilter(dest, origin string) string {
	if origin == "" {
		return relayPrefix + dest + ".*.*.*"
	}
	return relayPrefix + dest + "." + origin + ".*.*.*"
}

func parseFedSubject(prefix, subject string) (fedSubject, error) {
	rest, ok := strings.CutPrefix(subject, prefix)
	parts := strings.Split(rest, ".")
	var f fedSubject
	switch {
	case ok && len(parts) == 4:
		f = fedSubject{Dest: parts[0], Kind: parts[1], A: parts[2], B: parts[3]}
	case ok && len(parts) == 5 && prefix == relayPrefix && CheckBusID(parts[1]) == nil:
		f = fedSubject{Dest: parts[0], Origin: parts[1], Kind: parts[2], A: parts[3], B: parts[4]}
	default:
		return fedSubject{}, fmt.Errorf("%w: unexpected subject %s", ErrRefused, subject)
	}
	if CheckBusID(f.Dest) != nil || f.A == "" || f.B == "" {
		return fedSubject{}, fmt.Errorf("%w: unexpected subject %s", ErrRefused, subject)
	}
	switch f.Kind {
	case kindDoc, kindStatus:
		f.A, f.B = envelope.CodeFromToken(f.A), envelope.CodeFromToken(f.B)
	case kindFile, kindDir:
	default:
		return fedSubject{}, fmt.Errorf("%w: unexpected subject %s", ErrRefused, subject)
	}
	return f, nil
}

func busKey(id string) string { return busKeyPrefix + id }
