package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// GenesisHash is the prev of the first link of a chain.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// linkVersion starts the text a link hash covers; a new layout gets a new
// version so that old bundles keep verifying. linkVersionRecorded is the
// layout of a link that carries a recorded time.
const (
	linkVersion         = "docaxis-audit-link/1"
	linkVersionRecorded = "docaxis-audit-link/2"
)

// Link is one record's entry in the audit chain. Hash is the SHA-256 (hex)
// of the text
//
//	docaxis-audit-link/1\n<seq>\n<time>\n<subject>\n<digest>\n<prev>\n
//
// or, for a link with a recorded time,
//
//	docaxis-audit-link/2\n<seq>\n<time>\n<recorded>\n<subject>\n<digest>\n<prev>\n
//
// with times in RFC 3339 UTC with nanoseconds as Go's time.RFC3339Nano
// writes them (the same strings the JSON form carries), so that anyone can
// recompute it with printf and sha256sum.
type Link struct {
	// Seq is the record's sequence in stream AXIS.
	Seq uint64 `json:"seq"`
	// Time is when the bus stored the record.
	Time time.Time `json:"time"`
	// Recorded, when set, is the earlier time the record counts as recorded
	// at for judging its signature: a copy from another bus of a federation
	// was recorded when the sender's bus stored it (the chainer sets it by
	// the rule the mailbox applies, see RecordedAt). Zero means Time. It is
	// part of the hash, so the signed checkpoints vouch for it.
	Recorded time.Time `json:"recorded,omitzero"`
	// Subject is the record's subject: axis.doc.<to>.<from> or
	// axis.status.<sender>.<reporter>. It says who the copy was for.
	Subject string `json:"subject"`
	// Digest is the SHA-256 (hex) of the record's exact bytes.
	Digest string `json:"digest"`
	// Prev is the Hash of the link before, GenesisHash for the first.
	Prev string `json:"prev"`
	Hash string `json:"hash"`
}

// NewLink returns the link of a record that follows prev (GenesisHash for
// the first record).
func NewLink(prev string, seq uint64, stored time.Time, subject string, data []byte) Link {
	sum := sha256.Sum256(data)
	l := Link{Seq: seq, Time: stored.UTC(), Subject: subject, Digest: hex.EncodeToString(sum[:]), Prev: prev}
	l.Hash = l.ComputeHash()
	return l
}

// WithRecorded returns l with its recorded time set to recorded and its
// hash recomputed. A recorded time that is not before the stored time
// changes nothing: the link then keeps the first layout.
func (l Link) WithRecorded(recorded time.Time) Link {
	l.Recorded = time.Time{}
	if !recorded.IsZero() && recorded.Before(l.Time) {
		l.Recorded = recorded.UTC()
	}
	l.Hash = l.ComputeHash()
	return l
}

// RecordedAt is the time the record's signature is judged at: Recorded
// when the link carries one, else the stored time.
func (l *Link) RecordedAt() time.Time {
	if !l.Recorded.IsZero() {
		return l.Recorded
	}
	return l.Time
}

// HashInput returns the exact text Hash covers.
func (l *Link) HashInput() string {
	var b strings.Builder
	if l.Recorded.IsZero() {
		b.WriteString(linkVersion)
	} else {
		b.WriteString(linkVersionRecorded)
	}
	b.WriteByte('\n')
	b.WriteString(strconv.FormatUint(l.Seq, 10))
	b.WriteByte('\n')
	b.WriteString(l.Time.UTC().Format(time.RFC3339Nano))
	b.WriteByte('\n')
	if !l.Recorded.IsZero() {
		b.WriteString(l.Recorded.UTC().Format(time.RFC3339Nano))
		b.WriteByte('\n')
	}
	b.WriteString(l.Subject)
	b.WriteByte('\n')
	b.WriteString(l.Digest)
	b.WriteByte('\n')
	b.WriteString(l.Prev)
	b.WriteByte('\n')
	return b.String()
}

// ComputeHash returns the hash l should carry.
func (l *Link) ComputeHash() string {
	sum := sha256.Sum256([]byte(l.HashInput()))
	return hex.EncodeToString(sum[:])
}

// Valid reports whether l's Hash matches its content.
func (l *Link) Valid() bool { return l.Hash == l.ComputeHash() }
