package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing/pdf"
)

func isPDF(a envelope.Attachment) bool {
	return a.MediaType == "application/pdf" || strings.EqualFold(filepath.Ext(a.Name), ".pdf")
}

// PDFDetails is what a receipt says about one PDF attachment: the
// verification report, or why there is none (not a PDF, unsigned).
type PDFDetails struct {
	OK     bool        `json:"ok"`
	Error  string      `json:"error,omitempty"`
	Report *pdf.Report `json:"report,omitempty"`
}

// pdfCheck verifies a saved PDF's signatures against the client's trust;
// the result travels in the delivered receipt.
func (m *Mailbox) pdfCheck(ctx context.Context, a envelope.Attachment, path string) (any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrAttachment, a.Name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	det := PDFDetails{}
	rep, err := pdf.Verify(f, st.Size(), m.c.trust)
	switch {
	case err != nil:
		det.Error = err.Error()
	case rep.OK():
		det.OK, det.Report = true, rep
	default:
		det.Error, det.Report = rep.Err().Error(), rep
	}
	if !det.OK && m.opts.requirePDF {
		reason := det.Error
		if errors.Is(err, pdf.ErrUnsigned) {
			reason = "not signed"
		}
		return det, fmt.Errorf("%w: PDF %s: %s (signed PDFs are required)", ErrReject, a.Name, reason)
	}
	return det, nil
}
