package broker

import "github.com/docaxis/docaxis/broker/record"

// The names below are the record schema's (package record), kept here for
// the client library's users and for the files of this package that still
// spell them so.

// Stream, bucket and subject names.
const (
	StreamName       = record.Stream
	QuarantineStream = record.QuarantineStream
	TrackBucket      = record.TrackBucket
	DirectoryBucket  = record.DirectoryBucket
	ReceivedBucket   = record.ReceivedBucket
	FileRefsBucket   = record.FileRefsBucket
	// IDsBucket binds each envelope id to the first sender whose verified
	// copy used it (key: envelope id, value: sender code). Reuse of an id
	// by another sender is refused everywhere.
	IDsBucket = record.IDsBucket

	trackerDurable = record.TrackerDurable
)

// Message headers set by docaxis.
const (
	HeaderReason        = record.HeaderReason
	HeaderOriginSubject = record.HeaderOriginSubject
	HeaderOriginSeq     = record.HeaderOriginSeq
	HeaderDeliveries    = record.HeaderDeliveries
	HeaderEnvelope      = record.HeaderEnvelope
	HeaderAgency        = record.HeaderAgency
	// HeaderRecorded is set by the federation on a copy from another bus:
	// when the sender's bus recorded it (the first signed trace entry).
	HeaderRecorded = record.HeaderRecorded
)

// DocSubject is the subject of the copy of an envelope for recipient to.
func DocSubject(to, from string) string { return record.DocSubject(to, from) }

// StatusSubject is the subject of a status reported by reporter to sender.
func StatusSubject(sender, reporter string) string { return record.StatusSubject(sender, reporter) }

// MailboxFilter matches every envelope addressed to agency.
func MailboxFilter(agency string) string { return record.MailboxFilter(agency) }

// StatusFilter matches every status addressed to agency (as sender).
func StatusFilter(agency string) string { return record.StatusFilter(agency) }

// MailboxDurable is the durable consumer of an agency's mailbox.
func MailboxDurable(agency string) string { return record.MailboxDurable(agency) }

// StatusDurable is the durable consumer of an agency's status box.
func StatusDurable(agency string) string { return record.StatusDurable(agency) }

// QuarantineSubject is where messages an agency could not process go.
func QuarantineSubject(agency string) string { return record.QuarantineSubject(agency) }

// FileRefKey records that agency may read the attachment whose SHA-256 is
// sum (see record.FileRefKey).
func FileRefKey(sum, agency string) string { return record.FileRefKey(sum, agency) }

// UploadRefKey records that agency uploaded the bytes whose SHA-256 is sum
// (see record.UploadRefKey).
func UploadRefKey(sum, agency string) string { return record.UploadRefKey(sum, agency) }

func trackKey(sender, id, recipient string) string { return record.TrackKey(sender, id, recipient) }

func receivedKey(recipient, id string) string { return record.ReceivedKey(recipient, id) }

// parseSubject splits a record subject (record.ParseSubject): kind is
// "doc" or "status", a the addressee and b the author.
func parseSubject(subject string) (kind, a, b string, ok bool) {
	s, ok := record.ParseSubject(subject)
	return s.Kind, s.To, s.From, ok
}
