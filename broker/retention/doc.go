// Package retention removes what the bus no longer has to keep, by rules
// an operator sets: the record of a document (its copies, statuses and
// tracking) after some years, status messages earlier, attachment bytes
// some years after delivery while their digests stay in the envelopes on
// record. A legal hold on an agency or a document keeps everything of it,
// whatever the rules; a plan shows what a run would remove, and what holds
// keep, before anything is.
//
// What is removed is decided from the tracking pairs, the bus's verified
// state of the record, and from envelopes whose digest matches their pair:
// a message that was never verified cannot make anything else go.
package retention
