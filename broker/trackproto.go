package broker

import (
	"errors"
	"time"
)

// The tracking service's wire form (record.TrackServiceSubject): the JSON
// bodies an agency's client sends and the bus answers, with the tracking
// entries of package broker inside.

// ErrTrackRequest: the tracking service refused a request as malformed.
var ErrTrackRequest = errors.New("bad tracking request")

// TrackRequest is the body of a tracking request.
type TrackRequest struct {
	ID        string `json:"id,omitempty"`
	Recipient string `json:"recipient,omitempty"`
	After     uint64 `json:"after,omitempty"`
	Limit     int    `json:"limit,omitempty"`
	// Seq is the record message a copy was deduplicated against (copy).
	Seq uint64 `json:"seq,omitempty"`
}

// TrackReply is the body of a tracking answer.
type TrackReply struct {
	Error   string `json:"error,omitempty"`
	Message string `json:"message,omitempty"`
	// RetryAfterMS, with rate-limited, says when to ask again.
	RetryAfterMS int64           `json:"retry_after_ms,omitempty"`
	Role         string          `json:"role,omitempty"`
	Status       *DocumentStatus `json:"status,omitempty"`
	Tracking     *Tracking       `json:"tracking,omitempty"`
	Entries      []*Tracking     `json:"entries,omitempty"`
	Statuses     []StatusRecord  `json:"statuses,omitempty"`
	Next         uint64          `json:"next,omitempty"`
}

// StatusRecord is a signed status as the record holds it, for the agency
// to verify itself.
type StatusRecord struct {
	Recipient string    `json:"recipient"`
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Recorded  string    `json:"recorded,omitempty"` // record.HeaderRecorded of the record message
	Raw       []byte    `json:"raw"`
}

// retryAfter is how long a rate-limited client waits before asking again.
func (r *TrackReply) retryAfter() time.Duration {
	d := time.Duration(r.RetryAfterMS) * time.Millisecond
	return min(max(d, 10*time.Millisecond), time.Second)
}
