package broker

import (
	"strings"

	"github.com/docaxis/docaxis/envelope"
)

// Stream, bucket and subject names.
const (
	StreamName       = "AXIS"
	QuarantineStream = "AXIS_QUARANTINE"
	TrackBucket      = "AXIS_TRACK"
	DirectoryBucket  = "AXIS_DIRECTORY"
	ReceivedBucket   = "AXIS_RECEIVED"
	FileRefsBucket   = "AXIS_FILEREFS"
	// IDsBucket binds each envelope id to the first sender whose verified
	// copy used it (key: envelope id, value: sender code). Reuse of an id
	// by another sender is refused everywhere.
	IDsBucket = "AXIS_IDS"

	docPrefix        = "axis.doc."
	statusPrefix     = "axis.status."
	quarantinePrefix = "axis.quarantine."
	trackerDurable   = "tracker"
)

// Message headers set by docaxis.
const (
	HeaderReason        = "Docaxis-Reason"
	HeaderOriginSubject = "Docaxis-Origin-Subject"
	HeaderOriginSeq     = "Docaxis-Origin-Seq"
	HeaderDeliveries    = "Docaxis-Deliveries"
	HeaderEnvelope      = "Docaxis-Envelope"
	HeaderAgency        = "Docaxis-Agency"
	// HeaderRecorded is set by the federation on a copy from another bus:
	// when the sender's bus recorded it (the first signed trace entry).
	HeaderRecorded = "Docaxis-Recorded"
)

// DocSubject is the subject of the copy of an envelope for recipient to.
func DocSubject(to, from string) string {
	return docPrefix + envelope.Token(to) + "." + envelope.Token(from)
}

// StatusSubject is the subject of a status reported by reporter to sender.
func StatusSubject(sender, reporter string) string {
	return statusPrefix + envelope.Token(sender) + "." + envelope.Token(reporter)
}

// MailboxFilter matches every envelope addressed to agency.
func MailboxFilter(agency string) string { return docPrefix + envelope.Token(agency) + ".*" }

// StatusFilter matches every status addressed to agency (as sender).
func StatusFilter(agency string) string { return statusPrefix + envelope.Token(agency) + ".*" }

// MailboxDurable is the durable consumer of an agency's mailbox.
func MailboxDurable(agency string) string { return "mbox_" + envelope.Token(agency) }

// StatusDurable is the durable consumer of an agency's status box.
func StatusDurable(agency string) string { return "sbox_" + envelope.Token(agency) }

// QuarantineSubject is where messages an agency could not process go.
func QuarantineSubject(agency string) string { return quarantinePrefix + envelope.Token(agency) }

// trackKey is the tracking key of (envelope, recipient).
func trackKey(sender, id, recipient string) string {
	return envelope.Token(sender) + "." + id + "." + envelope.Token(recipient)
}

func receivedKey(recipient, id string) string { return envelope.Token(recipient) + "." + id }

// FileRefKey records that agency may read the attachment whose SHA-256 is
// sum: it sent or received an envelope listing it.
func FileRefKey(sum, agency string) string { return sum + "." + envelope.Token(agency) }

// UploadRefKey records that agency uploaded the bytes whose SHA-256 is sum:
// proof that it holds them. The tracker grants a recipient access to an
// attachment only when the sender holds it (uploaded it, or sent or
// received it before), so knowing a hash is not enough to read the bytes
// by listing it in an envelope of one's own.
func UploadRefKey(sum, agency string) string { return FileRefKey(sum, agency) + ".up" }

func directoryKey(code string) string { return "agency." + envelope.Token(code) }

// parseSubject splits axis.<kind>.<a>.<b> into its agency codes.
func parseSubject(subject string) (kind, a, b string, ok bool) {
	parts := strings.Split(subject, ".")
	if len(parts) != 4 || parts[0] != "axis" {
		return "", "", "", false
	}
	return parts[1], envelope.CodeFromToken(parts[2]), envelope.CodeFromToken(parts[3]), true
}
