package backup

import "errors"

var (
	// ErrDamaged: an entry's bytes do not match the manifest, or the
	// archive is not a docaxis backup.
	ErrDamaged = errors.New("backup damaged")
	// ErrTruncated: the archive ends before its manifest, or lacks an
	// entry the manifest lists.
	ErrTruncated = errors.New("backup incomplete")
	// ErrNewerFormat: written by a newer docaxis; this one cannot read it.
	ErrNewerFormat = errors.New("backup from a newer docaxis")
	// ErrHomeNotEmpty: restore writes only into an empty or missing home.
	ErrHomeNotEmpty = errors.New("restore target is not empty")
	// ErrSnapshot: the bus refused or broke off a stream snapshot or
	// restore.
	ErrSnapshot = errors.New("stream snapshot")
	// ErrEncrypted: the archive is encrypted, and no identity given opens
	// it.
	ErrEncrypted = errors.New("backup encrypted")
)
