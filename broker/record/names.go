package record

import (
	"strconv"
	"strings"
	"time"

	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go/jetstream"
)

// Streams of the bus.
const (
	// Stream is the record: every envelope copy and status, kept for the
	// auditor.
	Stream = "AXIS"
	// QuarantineStream holds what could not be processed, with the reason.
	QuarantineStream = "AXIS_QUARANTINE"
	// AuditStream holds the audit chain linking the record's messages.
	AuditStream = "AXIS_AUDIT"
)

// KV buckets of the bus.
const (
	TrackBucket     = "AXIS_TRACK"
	DirectoryBucket = "AXIS_DIRECTORY"
	ReceivedBucket  = "AXIS_RECEIVED"
	FileRefsBucket  = "AXIS_FILEREFS"
	// IDsBucket binds each envelope id to the first sender whose verified
	// copy used it (key: envelope id, value: sender code). Reuse of an id
	// by another sender is refused everywhere.
	IDsBucket = "AXIS_IDS"
	// RateBucket keeps the bus's publish-rate verdicts.
	RateBucket = "AXIS_RATE"
	// DocIDsBucket indexes envelopes by their document's official number.
	DocIDsBucket = "AXIS_DOCIDS"
	// LeaseBucket holds the running processes' leases (not the bus's data).
	LeaseBucket = "AXIS_LEASES"
)

// KVStreamPrefix + a bucket's name is the stream JetStream keeps the
// bucket in.
const KVStreamPrefix = "KV_"

// KVStream is the stream JetStream keeps a KV bucket in.
func KVStream(bucket string) string { return KVStreamPrefix + bucket }

// KVSubject is the subject JetStream stores key of bucket on.
func KVSubject(bucket, key string) string { return "$KV." + bucket + "." + key }

// Subject prefixes of the record and the quarantine.
const (
	DocPrefix        = "axis.doc."
	StatusPrefix     = "axis.status."
	QuarantinePrefix = "axis.quarantine."
)

// Kinds of record subjects (the second token).
const (
	KindDoc    = "doc"
	KindStatus = "status"
)

// Durable consumers on the record.
const (
	// TrackerDurable is the bus's tracker.
	TrackerDurable = "tracker"
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
	// HeaderOriginStream names the stream a quarantined federation message
	// was taken from.
	HeaderOriginStream = "Docaxis-Origin-Stream"
	// HeaderOriginMsgID keeps, on a quarantine entry, the message id the
	// message was taken with (an entry's own Nats-Msg-Id is its dedup id).
	HeaderOriginMsgID = "Docaxis-Origin-Msg-Id"
	// HeaderTrace holds one signed trace entry per bus a copy from another
	// bus crossed, in order (a compact JWS each).
	HeaderTrace = "Docaxis-Trace"
	// HeaderOriginBus names the bus a copy entered the federation at
	// (informational: the first trace entry is what counts).
	HeaderOriginBus = "Docaxis-Origin-Bus"
)

// DocSubject is the subject of the copy of an envelope for recipient to.
func DocSubject(to, from string) string {
	return DocPrefix + envelope.Token(to) + "." + envelope.Token(from)
}

// StatusSubject is the subject of a status reported by reporter to sender.
func StatusSubject(sender, reporter string) string {
	return StatusPrefix + envelope.Token(sender) + "." + envelope.Token(reporter)
}

// MailboxFilter matches every envelope addressed to agency.
func MailboxFilter(agency string) string { return DocPrefix + envelope.Token(agency) + ".*" }

// MailboxAgencies returns the agencies whose mailbox filters
// (MailboxFilter) a consumer has, in their order; other filters, a
// document system's own actor's included, name none.
func MailboxAgencies(cfg jetstream.ConsumerConfig) []string {
	var out []string
	for _, f := range append([]string{cfg.FilterSubject}, cfg.FilterSubjects...) {
		rest, ok := strings.CutPrefix(f, DocPrefix)
		t, ok2 := strings.CutSuffix(rest, ".*")
		if ok && ok2 && plainToken(t) && !strings.HasPrefix(t, SystemActorPrefix) {
			out = append(out, envelope.CodeFromToken(t))
		}
	}
	return out
}

// StatusFilter matches every status addressed to agency (as sender).
func StatusFilter(agency string) string { return StatusPrefix + envelope.Token(agency) + ".*" }

// SentFilter matches every envelope copy agency sent.
func SentFilter(agency string) string { return DocPrefix + "*." + envelope.Token(agency) }

// ReportedFilter matches every status agency reported.
func ReportedFilter(agency string) string { return StatusPrefix + "*." + envelope.Token(agency) }

// AgencyFilters are the subject filters of agency's traffic in both
// directions. None is a subset of another, as JetStream requires.
func AgencyFilters(agency string) []string {
	return []string{MailboxFilter(agency), SentFilter(agency), StatusFilter(agency), ReportedFilter(agency)}
}

// RecordFilters match every message of the record.
func RecordFilters() []string { return []string{DocPrefix + ">", StatusPrefix + ">"} }

// MailboxDurable is the durable consumer of an agency's mailbox.
func MailboxDurable(agency string) string { return mailboxDurablePrefix + envelope.Token(agency) }

// StatusDurable is the durable consumer of an agency's status box
// (earlier versions; the bus removes them).
func StatusDurable(agency string) string { return statusDurablePrefix + envelope.Token(agency) }

const (
	mailboxDurablePrefix  = "mbox_"
	statusDurablePrefix   = "sbox_"
	systemDurablePrefix   = "sys_"
	transferDurablePrefix = "xfer_"
)

// MailboxOfDurable returns the agency whose mailbox consumer is named
// name (MailboxDurable).
func MailboxOfDurable(name string) (agency string, ok bool) {
	return codeAfter(name, mailboxDurablePrefix)
}

// SystemOfDurable returns the document system whose mailbox consumer is
// named name (SystemDurable).
func SystemOfDurable(name string) (id string, ok bool) { return codeAfter(name, systemDurablePrefix) }

// IsStatusDurable tells a status box's consumer (StatusDurable).
func IsStatusDurable(name string) bool { _, ok := codeAfter(name, statusDurablePrefix); return ok }

// codeAfter returns the agency code whose token follows prefix in s.
func codeAfter(s, prefix string) (string, bool) {
	tok, ok := strings.CutPrefix(s, prefix)
	if !ok || tok == "" {
		return "", false
	}
	return envelope.CodeFromToken(tok), true
}

// QuarantineSubject is where messages an agency could not process go.
func QuarantineSubject(agency string) string { return QuarantinePrefix + envelope.Token(agency) }

// QuarantineFilter matches every quarantine entry.
const QuarantineFilter = QuarantinePrefix + ">"

// QuarantineAgency returns the agency whose quarantine subject is subject
// (QuarantineSubject).
func QuarantineAgency(subject string) (agency string, ok bool) {
	return codeAfter(subject, QuarantinePrefix)
}

// TrackKey is the tracking key of (envelope, recipient).
func TrackKey(sender, id, recipient string) string {
	return envelope.Token(sender) + "." + id + "." + envelope.Token(recipient)
}

// SplitTrackKey splits a tracking key (TrackKey) into the sender's token,
// the envelope id and the recipient's token (envelope.Token).
func SplitTrackKey(key string) (senderToken, id, recipientToken string, ok bool) {
	parts := strings.Split(key, ".")
	if len(parts) != 3 || parts[0] == "" || parts[2] == "" || !envelope.IsID(parts[1]) {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// TrackKeyFilter matches the tracking keys of sender, envelope id and
// recipient; an empty one matches any.
func TrackKeyFilter(sender, id, recipient string) string {
	orAny := func(s string) string {
		if s == "" {
			return "*"
		}
		return s
	}
	tok := func(code string) string { return orAny(envelope.Token(code)) }
	return tok(sender) + "." + orAny(id) + "." + tok(recipient)
}

// ReceivedKey records that recipient handed envelope id to its application.
func ReceivedKey(recipient, id string) string { return envelope.Token(recipient) + "." + id }

// ListedKey marks, in ReceivedBucket, that a listing of recipient's
// mailbox by the bus's HTTP API showed a copy of envelope id the tracking
// does not name (one that does not verify, or not tracked yet); its value
// is the copy's record sequence, checked before use (it is in the
// recipient's own key space).
func ListedKey(recipient, id string) string { return envelope.Token(recipient) + ".listed-" + id }

// FileRefKey records that agency may read the attachment whose SHA-256 is
// sum: it sent or received an envelope listing it.
func FileRefKey(sum, agency string) string { return sum + "." + envelope.Token(agency) }

// UploadRefKey records that agency uploaded the bytes whose SHA-256 is sum:
// proof that it holds them. The tracker grants a recipient access to an
// attachment only when the sender holds it (uploaded it, or sent or
// received it before), so knowing a hash is not enough to read the bytes
// by listing it in an envelope of one's own.
func UploadRefKey(sum, agency string) string { return FileRefKey(sum, agency) + uploadRefSuffix }

const uploadRefSuffix = ".up"

// FileRefsOf is the filter of every key, an envelope's or an upload's,
// that refers to the attachment whose SHA-256 is sum.
func FileRefsOf(sum string) string { return sum + ".>" }

// IsUploadRefKey tells an upload's key (UploadRefKey) from an envelope's
// (FileRefKey) in the attachment access bucket.
func IsUploadRefKey(key string) bool { return strings.HasSuffix(key, uploadRefSuffix) }

// DirectoryAgencyPrefix starts the directory key of every agency.
const DirectoryAgencyPrefix = "agency."

// DirectoryKey is the directory key of an agency.
func DirectoryKey(code string) string { return DirectoryAgencyPrefix + envelope.Token(code) }

// DirectoryAgencyFilter matches the directory key of every agency.
const DirectoryAgencyFilter = DirectoryAgencyPrefix + "*"

// DirectoryAgencyOf returns the agency whose directory key is key
// (DirectoryKey).
func DirectoryAgencyOf(key string) (code string, ok bool) {
	return codeAfter(key, DirectoryAgencyPrefix)
}

// IsDirectoryAgencyKey tells an agency's directory key.
func IsDirectoryAgencyKey(key string) bool { _, ok := DirectoryAgencyOf(key); return ok }

// DirectorySystemPrefix starts the directory key of every document system.
const DirectorySystemPrefix = "system."

// DirectorySystemKey is the directory key of document system id.
func DirectorySystemKey(id string) string { return DirectorySystemPrefix + envelope.Token(id) }

// DirectorySystemFilter matches the directory key of every document system.
const DirectorySystemFilter = DirectorySystemPrefix + "*"

// IsDirectorySystemKey tells a document system's directory key.
func IsDirectorySystemKey(key string) bool { _, ok := codeAfter(key, DirectorySystemPrefix); return ok }

// DuplicateWindow is how long the record remembers a message id: a copy
// published again within it is stored once (Nats-Msg-Id).
const DuplicateWindow = 2 * time.Hour

// MayOutliveDedup reports whether an envelope created at created can be
// sent again after the record forgot the ids of its first copies: its
// first send came after its creation, so one created less than a quarter
// of the window ago (clocks may differ by minutes) is still remembered,
// and a sender need not ask which copies the bus holds.
func MayOutliveDedup(created, now time.Time) bool { return now.Sub(created) >= DuplicateWindow/4 }

// DocMsgID is the message id (the dedup key) of the copy of envelope id
// for recipient to.
func DocMsgID(id, to string) string { return id + "." + envelope.Token(to) }

// StatusMsgID is the message id of a status: its own envelope id.
func StatusMsgID(id string) string { return id }

// CopyMsgID is the message id of a copy of envelope id on a subject of
// kind for addressee to (DocMsgID or StatusMsgID).
func CopyMsgID(kind, id, to string) string {
	if kind == KindStatus {
		return StatusMsgID(id)
	}
	return DocMsgID(id, to)
}

// QuarantineMsgID is the message id of the quarantine entry of the record
// message at seq for agency: quarantining it again is a no-op.
func QuarantineMsgID(seq uint64, agency string) string {
	return "q." + strconv.FormatUint(seq, 10) + "." + envelope.Token(agency)
}

// RetryMsgID is the message id a quarantine entry is re-driven with: the
// original one may still be within the dedup window.
func RetryMsgID(quarantineSeq uint64, agency string) string {
	return "retry." + strconv.FormatUint(quarantineSeq, 10) + "." + envelope.Token(agency)
}

// FederationQuarantineMsgID is the message id of the federation's
// quarantine entry of the message at seq taken by loop (the loop names the
// stream's bus too: members' outbound streams share a name and their
// sequences).
func FederationQuarantineMsgID(loop string, seq uint64) string {
	return "fq." + loop + "." + strconv.FormatUint(seq, 10)
}

// SystemDurable is the mailbox consumer of a system: one for all the
// agencies it serves (a filter subject each).
func SystemDurable(id string) string { return systemDurablePrefix + envelope.Token(id) }

// TransferDurable is the consumer through which a system catches up with
// the mail stored for agencies that came to it from elsewhere (another
// system, their own mailbox, or no mailbox at all). The bus removes it
// once drained.
func TransferDurable(id string) string { return transferDurablePrefix + envelope.Token(id) }

// ValidKey is nats.go's rule for keys: letters, digits and -/_=. in
// non-empty dot-separated parts; above all, no wildcard that would turn a
// question about one key into one about many.
func ValidKey(key string) bool {
	if key == "" || key[0] == '.' || key[len(key)-1] == '.' || strings.Contains(key, "..") {
		return false
	}
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '/', c == '_', c == '=', c == '.':
		default:
			return false
		}
	}
	return true
}
