package broker

import (
	"errors"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats.go"
)

// QuarantineRequest is a decoded quarantine-service request, for the fuzz
// target of the black-box tests.
type QuarantineRequest struct {
	Op, Agency, Reason string
	Seq, Deliveries    uint64
}

// DecodeQuarantineRequest exposes the service's decoding of a request: the
// request, or the error code it is refused with.
func DecodeQuarantineRequest(subject, reply string, h nats.Header, body []byte) (req QuarantineRequest, replyOK bool, code string) {
	r, err := decodeQuarantineRequest(subject, h, body)
	replyOK = record.ReplyAllowed(reply, subject[min(len(subject), len(record.QuarantineServicePrefix)):])
	if err != nil {
		var se *record.ServiceError
		if errors.As(err, &se) {
			return req, replyOK, se.Code
		}
		return req, replyOK, "untyped: " + err.Error()
	}
	return QuarantineRequest{Op: r.op, Agency: r.agency, Reason: r.reason, Seq: r.seq, Deliveries: r.deliveries}, replyOK, ""
}
