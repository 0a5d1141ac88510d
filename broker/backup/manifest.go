package backup

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// FormatVersion of the archives this package writes. Restore refuses a
// higher one: its layout may mean what this version does not know.
// Format 2 adds the manifest's signature (signature.go); an archive
// without one is still written as format 1, which earlier versions read.
const FormatVersion = 2

// Names of the entries that are not content.
const (
	headerName   = "docaxis-backup.json"
	manifestName = "manifest.json"
	homePrefix   = "home/"
	streamPrefix = "streams/"
	objectPrefix = "objects/"
)

// Limits on what a backup may hold, so that a hostile archive cannot make
// restore allocate without bound.
const (
	maxManifestBytes = 64 << 20
	maxHeaderBytes   = 64 << 10
	maxEntries       = 1 << 20
)

// header is the archive's first entry: read before anything else, so a
// newer format is refused with the right reason.
type header struct {
	Format  int       `json:"format"`
	Created time.Time `json:"created"`
	Tool    string    `json:"tool"`
	// Sealed: the manifest carries its own SHA-256 (Manifest.SHA256).
	// Archives written before it was sealed lack both.
	Sealed bool `json:"sealed,omitempty"`
	// Signed: manifest.jws signs the manifest (signature.go).
	Signed bool `json:"signed,omitempty"`
}

// Manifest lists every entry of an archive.
type Manifest struct {
	// SHA256 is the hex SHA-256 of the manifest's bytes with this value
	// written as zeros: the streams' configuration and state, which no
	// entry's digest covers and restore hands the server as they are, are
	// checked too. First, so that it is the first 64 zeros written.
	SHA256  string    `json:"sha256,omitempty"`
	Format  int       `json:"format"`
	Created time.Time `json:"created"`
	// Version of the docaxis that wrote it.
	Version string `json:"version,omitempty"`
	// RecordSeq is the last sequence of the record in the archive: the
	// point in time the backup holds.
	RecordSeq uint64 `json:"record_seq"`
	// RecordTime is when the record's snapshot was taken.
	RecordTime time.Time `json:"record_time"`
	Streams    []Stream  `json:"streams"`
	Entries    []Entry   `json:"entries"`

	// SignedBy is the chain of the key that signed the manifest, set by
	// Verify when the signature holds (nil: unsigned). Trust in it is
	// CheckSigner's to establish.
	SignedBy []*x509.Certificate `json:"-"`
	// caCert is the CA certificate the archive restores, read by Verify.
	caCert *x509.Certificate
}

// Stream is one stream's snapshot: its configuration and state as the bus
// gave them, needed to restore it.
type Stream struct {
	Name     string          `json:"name"`
	Entry    string          `json:"entry"`
	Config   json.RawMessage `json:"config"`
	State    json.RawMessage `json:"state"`
	Messages uint64          `json:"messages"`
	FirstSeq uint64          `json:"first_seq"`
	LastSeq  uint64          `json:"last_seq"`
	TakenAt  time.Time       `json:"taken_at"`
}

// Entry is one file of the archive.
type Entry struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Mode   uint32 `json:"mode,omitempty"`
}

// unsealed stands for the manifest's own digest while it is computed.
var unsealed = strings.Repeat("0", sha256.Size*2)

// seal encodes m with its SHA256 set (see Manifest.SHA256).
func seal(m *Manifest) ([]byte, error) {
	m.SHA256 = unsealed
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	m.SHA256 = hex.EncodeToString(sum[:])
	return bytes.Replace(b, []byte(unsealed), []byte(m.SHA256), 1), nil
}

// checkSeal checks the manifest m decoded from b against its SHA256.
func checkSeal(m *Manifest, b []byte) error {
	if len(m.SHA256) != len(unsealed) || strings.Trim(m.SHA256, "0123456789abcdef") != "" || !bytes.Contains(b, []byte(m.SHA256)) {
		return fmt.Errorf("%w: manifest's SHA-256 %q", ErrDamaged, m.SHA256)
	}
	sum := sha256.Sum256(bytes.Replace(b, []byte(m.SHA256), []byte(unsealed), 1))
	if got := hex.EncodeToString(sum[:]); got != m.SHA256 {
		return fmt.Errorf("%w: manifest has SHA-256 %s, it says %s (a stream's configuration or state changed)", ErrDamaged, got, m.SHA256)
	}
	return nil
}
