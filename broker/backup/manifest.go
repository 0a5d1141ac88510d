package backup

import (
	"encoding/json"
	"time"
)

// FormatVersion of the archives this package writes. Restore refuses a
// higher one: its layout may mean what this version does not know.
const FormatVersion = 1

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
}

// Manifest lists every entry of an archive.
type Manifest struct {
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
