package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
)

// The client side of the bus's quarantine service (record.QuarantineServicePrefix):
// agencies may not write the quarantine, they ask the bus.

// requestQuarantine asks the bus to quarantine the copy at seq of agency's
// mailbox (the client holds agency's credentials).
func (c *Client) requestQuarantine(ctx context.Context, agency string, seq, deliveries uint64, reason string) error {
	m := nats.NewMsg(record.QuarantineServiceSubject(agency))
	m.Header.Set(record.HeaderOp, record.OpQuarantine)
	m.Header.Set(record.HeaderOriginSeq, strconv.FormatUint(seq, 10))
	m.Header.Set(record.HeaderDeliveries, strconv.FormatUint(min(deliveries, record.MaxDeliveries), 10))
	m.Data = []byte(record.CleanReason(reason))
	a, err := c.serviceRequest(ctx, m)
	if err != nil {
		return fmt.Errorf("quarantine #%d of the mailbox of %s: %w", seq, agency, err)
	}
	if a.Header.Get(record.HeaderQuarantineSeq) == "" {
		return fmt.Errorf("quarantine #%d of the mailbox of %s: the bus answered without an entry", seq, agency)
	}
	return nil
}

// serviceRequest sends a request to the quarantine service and turns an
// error answer into an error.
func (c *Client) serviceRequest(ctx context.Context, m *nats.Msg) (*nats.Msg, error) {
	if id := SystemOfActor(c.opts.agency); id != "" {
		// A system asks through the bus's system service, which checks
		// that it serves the agency.
		agency := envelope.CodeFromToken(strings.TrimPrefix(m.Subject, record.QuarantineServicePrefix))
		m.Subject = record.SystemServiceSubject(id, record.SysOpForward)
		m.Header.Set(record.HeaderAgency, agency)
	}
	rctx, cancel := context.WithTimeout(ctx, c.opts.timeout)
	defer cancel()
	a, err := c.nc.RequestMsgWithContext(rctx, m)
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, fmt.Errorf("%w: the bus's quarantine service is not running (is 'docaxis serve' up?)", err)
	}
	if err != nil {
		return nil, c.explain(err)
	}
	if code := a.Header.Get(record.HeaderError); code != "" {
		if code == record.CodeUnavailable || code == record.CodeRateLimited {
			return nil, fmt.Errorf("the bus's quarantine service: %s: %s", code, record.Cut(string(a.Data), 1024))
		}
		return nil, fmt.Errorf("%w: %s: %s", ErrQuarantineRefused, code, record.Cut(string(a.Data), 1024))
	}
	return a, nil
}

// admit asks the bus whether the copy at seq of agency's mailbox was
// recorded within the publish rate. nil: deliver it; an error wrapping
// ErrReject and ErrRateLimited: refuse it; any other error: try later.
// Without a rate in force there is nothing to ask.
func (c *Client) admit(ctx context.Context, agency string, seq uint64) error {
	if c.Limits().PublishRate <= 0 {
		return nil
	}
	m := nats.NewMsg(record.QuarantineServiceSubject(agency))
	m.Header.Set(record.HeaderOp, record.OpCheck)
	m.Header.Set(record.HeaderOriginSeq, strconv.FormatUint(seq, 10))
	// No answer (the bus's services still starting, or down) is no
	// verdict: the copy waits, as it would for any other check.
	a, err := c.serviceRequest(ctx, m)
	if err != nil {
		return fmt.Errorf("publish-rate check of copy #%d: %w", seq, err)
	}
	switch v := a.Header.Get(record.HeaderVerdict); v {
	case record.VerdictAdmitted:
		return nil
	case record.VerdictRefused:
		return fmt.Errorf("%w: %w: %s", ErrReject, ErrRateLimited, record.Cut(string(a.Data), MaxQuarantineReason))
	default:
		return fmt.Errorf("publish-rate check of copy #%d: unexpected verdict %q", seq, record.Cut(v, 64))
	}
}
