package broker

import "errors"

var (
	// ErrUnknownAgency: the agency is not registered in the directory.
	ErrUnknownAgency = errors.New("unknown agency")
	// ErrDuplicate: an envelope with this id was sent before; nothing was
	// sent again. A DMS retrying a send may treat it as success.
	ErrDuplicate = errors.New("envelope already sent")
	// ErrNotFound: no tracking record for that envelope (and agency).
	ErrNotFound = errors.New("envelope not found")
	// ErrNotRecipient: the agency is not a recipient of the envelope.
	ErrNotRecipient = errors.New("agency is not a recipient of the envelope")
	// ErrAttachment: an attachment could not be stored, fetched or verified.
	ErrAttachment = errors.New("attachment problem")
	// ErrPermission: the bus refused the operation to these credentials.
	ErrPermission = errors.New("permission denied")
	// ErrReject is wrapped by a Handler's error to refuse an envelope for
	// good: the sender gets an invalid receipt with the reason and the
	// envelope goes to quarantine instead of being redelivered.
	ErrReject = errors.New("envelope refused by the recipient")
	// ErrServedElsewhere: in a federation, the agency is served by another
	// bus and cannot be registered on this one.
	ErrServedElsewhere = errors.New("agency is served by another bus")
	// ErrNoMailbox: the bus holds no mailbox for the agency (it makes one
	// when the agency is registered).
	ErrNoMailbox = errors.New("no mailbox on the bus")
	// ErrInvalidEntry: a directory entry (or an import line) is malformed
	// or inconsistent: no name, unknown parent, a cycle, a bad state or
	// binding.
	ErrInvalidEntry = errors.New("invalid directory entry")
	// ErrInactive: the agency is suspended or deleted: new mail to it is
	// refused; its history stays on record.
	ErrInactive = errors.New("agency does not take mail")
)
