package audit

import "time"

// BundleFormat names the layout a bundle follows (see BUNDLE.md).
// Format 2 judges every record at its recorded time, which the chain links
// carry when it is not the stored time; VerifyBundle still reads format 1
// bundles (BundleFormatV1), judging their records at the stored time.
const (
	BundleFormat   = "docaxis-audit-bundle/2"
	BundleFormatV1 = "docaxis-audit-bundle/1"
	// EvidenceFormat is the per-document evidence package (EVIDENCE.md):
	// a bundle of one document's records, each chain segment closed by a
	// time-stamped checkpoint.
	EvidenceFormat = "docaxis-evidence/1"
)

// Names inside a bundle.
const (
	ManifestFile = "manifest.json"
	SumsFile     = "SHA256SUMS"
	LinksFile    = "links.jsonl"
	CAFile       = "certs/ca.pem"
	AuditCAFile  = "certs/audit.pem"
)

// Manifest is manifest.json: what the bundle holds and where.
type Manifest struct {
	Format  string        `json:"format"`
	Created time.Time     `json:"created"`
	Query   ManifestQuery `json:"query"`
	// Records are in stream order.
	Records      []ManifestRecord      `json:"records"`
	Links        ManifestLinks         `json:"links"`
	Checkpoints  []ManifestCheckpoint  `json:"checkpoints"`
	Certificates []ManifestCertificate `json:"certificates"`
	Attachments  []ManifestAttachment  `json:"attachments,omitempty"`
	// Covered is true when a signed checkpoint covers the last link of the
	// range and, when the range has an end, a link stored at or after it.
	Covered  bool     `json:"covered"`
	Warnings []string `json:"warnings,omitempty"`
	// Files maps every other file of the bundle (all but manifest.json and
	// SHA256SUMS) to its SHA-256 in hex.
	Files map[string]string `json:"files"`
	// Document is the envelope id an evidence package is about;
	// Timestamps its RFC 3161 tokens (evidence packages only).
	Document   string              `json:"document,omitempty"`
	Timestamps []ManifestTimestamp `json:"timestamps,omitempty"`
}

// ManifestTimestamp describes a .tsr file: the DER TimeStampResp a TSA
// gave over the exact bytes of checkpoint file Checkpoint.
type ManifestTimestamp struct {
	File       string    `json:"file"`
	Checkpoint string    `json:"checkpoint"`
	Seq        uint64    `json:"seq"`
	Time       time.Time `json:"time"`
	TSA        string    `json:"tsa"`
}

// ManifestQuery is the range the bundle was exported for.
type ManifestQuery struct {
	Since       time.Time `json:"since,omitzero"`
	Until       time.Time `json:"until,omitzero"`
	Agency      string    `json:"agency,omitempty"`
	Attachments bool      `json:"attachments,omitempty"`
}

// ManifestRecord describes one record file; Verified and Reason are what
// the bus found at export time.
type ManifestRecord struct {
	Seq     uint64    `json:"seq"`
	File    string    `json:"file"`
	Subject string    `json:"subject"`
	Stored  time.Time `json:"stored"`
	// Recorded, when set, is the earlier time the record counts as
	// recorded at (a copy from another bus of a federation); its chain
	// link carries the same time. Unset: the stored time.
	Recorded time.Time `json:"recorded,omitzero"`
	Digest   string    `json:"digest"`
	ID       string    `json:"id,omitempty"`
	Type     string    `json:"type"`
	From     string    `json:"from"`
	To       string    `json:"to"`
	Verified bool      `json:"verified"`
	Reason   string    `json:"reason,omitempty"`
}

// ManifestLinks describes links.jsonl: a contiguous piece of the chain
// from the anchor checkpoint's head (or the chain's start) through the
// closing checkpoint's head (or the chain's head at export time).
type ManifestLinks struct {
	File  string `json:"file"`
	Count int    `json:"count"`
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
}

// ManifestCheckpoint describes a checkpoint file. Role is "anchor" (its
// head is the first link of links.jsonl) or "closing" (it covers the range).
type ManifestCheckpoint struct {
	File string    `json:"file"`
	Role string    `json:"role"`
	Seq  uint64    `json:"seq"`
	Head string    `json:"head"`
	Time time.Time `json:"time"`
}

// ManifestCertificate describes a PEM file of certs/.
type ManifestCertificate struct {
	File string `json:"file"`
	// Role: "ca" (trust roots), "audit" (checkpoint signer chain),
	// "agency" (an agency's chain as its records carry it, leaf first) or
	// "crl" (a revocation list of the CA, DER; Fingerprint is its SHA-256).
	Role        string `json:"role"`
	Agency      string `json:"agency,omitempty"`
	Fingerprint string `json:"fingerprint"`
}

// ManifestAttachment describes a file of attachments/, named by SHA-256.
type ManifestAttachment struct {
	File    string   `json:"file"`
	SHA256  string   `json:"sha256"`
	Size    int64    `json:"size"`
	Name    string   `json:"name"`
	Records []uint64 `json:"records"`
}
