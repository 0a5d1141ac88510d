package federation

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/envelope"
)

// Streams, consumers and subjects of the federation (see doc.go).
const (
	// OutStream, on every bus, holds what leaves it: copies for other buses
	// with the bus's trace entry, their attachments, and (members) the
	// bus's directory announcements.
	OutStream = "AXIS_FED_OUT"
	// RelayStream, on the national bus, holds what the national relayed,
	// per destination bus, with its own trace entry.
	RelayStream = "AXIS_FED_RELAY"
	// InStream, on a member, sources from the national's relay what is
	// addressed to this bus.
	InStream = "AXIS_FED_IN"
	// DirStream, on a member, sources the national's directory.
	DirStream = "AXIS_FED_DIR"
	// fromPrefix + member names the national's stream sourcing a member's
	// OutStream: the stream a message sits in tells which bus sent it.
	fromPrefix = "AXIS_FED_FROM_"

	kvDirectoryStream = "KV_" + broker.DirectoryBucket

	uplinkConsumer  = "fed_uplink"  // on a member's OutStream, sourced by the national
	forwardConsumer = "fed_forward" // on AXIS: copies for other buses
	relayConsumer   = "fed_relay"   // national: on AXIS_FED_FROM_<member> and its own OutStream
	ingestConsumer  = "fed_ingest"  // on InStream (member) or RelayStream (national)
	dirsyncConsumer = "fed_dirsync" // member: on DirStream
	downPrefix      = "fed_down_"   // national: on RelayStream, one per member
	dirDownPrefix   = "fed_dir_"    // national: on the directory's stream, one per member

	outPrefix   = "axis.fedout."
	relayPrefix = "axis.fedrelay."
	linkPrefix  = "axis.fedlink."

	// StatusSubject answers `docaxis federation status` (bus credentials
	// only: agencies may not publish there, and it never crosses a link).
	StatusSubject = "axis.svc.federation.status"

	// busKeyPrefix + bus id: a BusEntry in the directory.
	busKeyPrefix = "fedbus."

	// quarantineAgency is the quarantine box of messages the federation
	// refused (axis.quarantine.federation).
	quarantineAgency = "federation"
)

// Message headers set by the federation.
const (
	// HeaderTrace holds one signed trace entry per bus the message crossed,
	// in order (a compact JWS each; see Hop).
	HeaderTrace = "Docaxis-Trace"
	// HeaderOriginBus names the bus the message entered the federation at
	// (informational: the first trace entry is what counts).
	HeaderOriginBus = "Docaxis-Origin-Bus"
	// HeaderChunk is "i/n" on the n messages carrying an attachment.
	HeaderChunk    = "Docaxis-File-Chunk"
	HeaderFileSize = "Docaxis-File-Size"
	HeaderFileType = "Docaxis-File-Type"
	// HeaderDirOp is "delete" on a directory announcement removing an entry.
	HeaderDirOp = "Docaxis-Dir-Op"
	// HeaderOriginStream names the stream a quarantined federation message
	// was taken from.
	HeaderOriginStream = "Docaxis-Origin-Stream"
)

// Message kinds in federation subjects.
const (
	kindDoc    = "doc"
	kindStatus = "status"
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
func fromStream(member string) string { return fromPrefix + member }

func linkSubject(member, dir string) string { return linkPrefix + member + "." + dir }

// fedSubject is a parsed federation subject:
//
//	<prefix><dest>.doc.<to>.<from>
//	<prefix><dest>.status.<sender>.<reporter>
//	<prefix><dest>.file.<envelope>.<sha256>
//	<prefix><dest>.dir.agency.<code token> | <prefix><dest>.dir.crl.<issuer hash>
type fedSubject struct {
	Dest, Kind string
	// A and B are agency codes for doc and status; envelope id and SHA-256
	// for file; entry kind and key token for dir.
	A, B string
}

func (f fedSubject) subject(prefix string) string {
	a, b := f.A, f.B
	if f.Kind == kindDoc || f.Kind == kindStatus {
		a, b = envelope.Token(a), envelope.Token(b)
	}
	return prefix + f.Dest + "." + f.Kind + "." + a + "." + b
}

func parseFedSubject(prefix, subject string) (fedSubject, error) {
	rest, ok := strings.CutPrefix(subject, prefix)
	parts := strings.Split(rest, ".")
	if !ok || len(parts) != 4 {
		return fedSubject{}, fmt.Errorf("%w: unexpected subject %s", ErrRefused, subject)
	}
	f := fedSubject{Dest: parts[0], Kind: parts[1], A: parts[2], B: parts[3]}
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
