package audit

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrChainBroken: a link's hash does not match its content, or its prev
	// does not match the hash of the link before it.
	ErrChainBroken = errors.New("audit chain broken")
	// ErrRecordMismatch: a record's bytes, subject or time differ from what
	// its link says.
	ErrRecordMismatch = errors.New("record does not match its chain link")
	// ErrMissingRecord: the chain names a record of the range that is not
	// there (removed).
	ErrMissingRecord = errors.New("record missing")
	// ErrUnlinkedRecord: a record that no link of the chain names (inserted,
	// or not yet chained).
	ErrUnlinkedRecord = errors.New("record not in the audit chain")
	// ErrCheckpoint: a checkpoint's signature, certificate or head is bad.
	ErrCheckpoint = errors.New("bad audit checkpoint")
	// ErrNotCovered: the end of the range is not covered by a signed
	// checkpoint, so its tail rests on the bundle alone.
	ErrNotCovered = errors.New("range not covered by a signed checkpoint")
	// ErrSignature: a record's envelope signature or certificate chain did
	// not verify.
	ErrSignature = errors.New("record signature not valid")
	// ErrCertificate: a certificate file of a bundle is not the one the
	// records or checkpoints were signed with, or does not chain to the CA.
	ErrCertificate = errors.New("bundle certificate problem")
	// ErrBundle: the bundle is not readable as a docaxis audit bundle, or a
	// file's SHA-256 differs from the manifest.
	ErrBundle = errors.New("bad audit bundle")
	// ErrBundleLimit: a bundle goes over one of VerifyLimits (a *LimitError
	// says which); it wraps ErrBundle.
	ErrBundleLimit = fmt.Errorf("%w: over a verification limit", ErrBundle)
	// ErrNoChain: the bus has no audit stream (no chainer ever ran).
	ErrNoChain = errors.New("no audit chain on this bus")
)

// Problem is one finding of a verification, tied to a record's stream
// sequence and the bundle file it concerns when there is one.
type Problem struct {
	Seq  uint64 `json:"seq,omitempty"`
	File string `json:"file,omitempty"`
	// Err wraps one of the package's sentinel errors.
	Err error `json:"-"`
	// Message is Err's text, for JSON output.
	Message string `json:"message"`
}

// problemFrom keeps err as it is when it already wraps sentinel.
func problemFrom(seq uint64, file string, sentinel, err error) *Problem {
	if !errors.Is(err, sentinel) {
		err = fmt.Errorf("%w: %w", sentinel, err)
	}
	return &Problem{Seq: seq, File: file, Err: err, Message: err.Error()}
}

func newProblem(seq uint64, file string, sentinel error, format string, args ...any) *Problem {
	err := fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
	return &Problem{Seq: seq, File: file, Err: err, Message: err.Error()}
}

func (p *Problem) Error() string {
	switch {
	case p.File != "" && p.Seq != 0 && !strings.HasPrefix(p.File, "records/"):
		return fmt.Sprintf("seq %d (%s): %v", p.Seq, p.File, p.Err)
	case p.File != "" && p.Seq != 0:
		return fmt.Sprintf("record seq %d (%s): %v", p.Seq, p.File, p.Err)
	case p.Seq != 0:
		return fmt.Sprintf("record seq %d: %v", p.Seq, p.Err)
	case p.File != "":
		return fmt.Sprintf("%s: %v", p.File, p.Err)
	}
	return p.Err.Error()
}

func (p *Problem) Unwrap() error { return p.Err }
