package broker

import (
	"time"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go"
)

// judgeStored checks a message of the record as the bus judged it when it
// came: signature chain, validity and revocation at the time it counts as
// recorded (record.JudgedAt: when this bus stored it, or for a copy from
// another bus of the federation, when the sender's bus did). The mailbox,
// the tracker, status reads and acknowledgements all judge through it, and
// the audit by the same rule, so that none of them reaches another verdict
// on the same bytes. h is the message's headers, from the agency whose
// copy or status it is, stored the time this bus stored it.
func (c *Client) judgeStored(s *envelope.Signed, h nats.Header, from string, stored time.Time) error {
	return c.verifier.Check(s, signing.At(c.recordedAt(h, from, stored)))
}
