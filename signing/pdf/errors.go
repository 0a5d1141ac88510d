package pdf

import "errors"

// MaxSize is the largest PDF Sign and Verify accept (512 MiB). It bounds
// the work one document can cause; official documents are far smaller.
const MaxSize = 512 << 20

var (
	// ErrNotPDF: the input has no %PDF- header.
	ErrNotPDF = errors.New("not a PDF")
	// ErrMalformed: the input starts like a PDF but its structure is broken
	// or truncated, or it uses constructs this package refuses.
	ErrMalformed = errors.New("malformed PDF")
	// ErrTooLarge: the input is larger than MaxSize.
	ErrTooLarge = errors.New("PDF too large")
	// ErrUnsigned: the PDF carries no signature dictionary.
	ErrUnsigned = errors.New("PDF is not signed")
	// ErrUnsupportedKey: the identity's key cannot make a PDF signature
	// that readers accept.
	ErrUnsupportedKey = errors.New("key type not supported for PDF signatures")
	// ErrTimestamp: the timestamp authority failed or answered wrongly.
	ErrTimestamp = errors.New("timestamp authority failed")
	// ErrInvalidSignature (from Report.Err): a signature does not verify
	// over the bytes it claims to cover.
	ErrInvalidSignature = errors.New("PDF signature invalid")
	// ErrModifiedAfterSigning (from Report.Err): bytes follow the range
	// covered by the last signature.
	ErrModifiedAfterSigning = errors.New("PDF modified after the last signature")
)
