package record

import "time"

// JudgedAt is the time a record message counts as recorded at when its
// signature, chain, validity and revocation are judged. The recipient's
// mailbox, the bus's tracker, status reads and the audit all judge a
// message at this time, so that they reach one verdict.
//
// It is the time this bus stored the message (stored) or, for a copy from
// an agency that another bus of the federation serves, the earlier time
// the federation's HeaderRecorded gives (the sender's bus's signed trace),
// never later than stored. Only the federation service can store a copy
// from an agency of another bus, so an agency cannot set the header for
// itself. header is HeaderRecorded's value ("" when absent), thisBus this
// bus's id in a federation ("" alone) and senderBus the bus serving the
// sender ("" when the directory does not say).
func JudgedAt(header string, stored time.Time, thisBus, senderBus string) time.Time {
	if header == "" || thisBus == "" || senderBus == "" || senderBus == thisBus {
		return stored
	}
	t, err := time.Parse(time.RFC3339Nano, header)
	if err != nil || t.After(stored) {
		return stored
	}
	return t.UTC()
}
