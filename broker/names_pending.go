package broker

import "github.com/docaxis/docaxis/broker/record"

// The last names of the record schema this package still spells itself,
// for directory.go and system.go only (another branch rewrites them now):
// once they say record.X, this file goes. Everything else takes the names
// from package record.
const (
	StreamName      = record.Stream
	DirectoryBucket = record.DirectoryBucket
)

// MailboxFilter is record.MailboxFilter.
func MailboxFilter(agency string) string { return record.MailboxFilter(agency) }

// MailboxDurable is record.MailboxDurable.
func MailboxDurable(agency string) string { return record.MailboxDurable(agency) }
