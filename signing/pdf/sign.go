package pdf

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/digitorus/pdf"
	"github.com/digitorus/pdfsign/sign"
	"github.com/docaxis/docaxis/signing"
)

// SignOptions describes a signature. All fields are optional.
type SignOptions struct {
	Name        string // signer's name in the signature; default: the certificate's common name
	Reason      string // e.g. "Phê duyệt"
	Location    string
	ContactInfo string
	// TSA is the URL of an RFC 3161 timestamp authority (http or https,
	// optionally with user:password@ for basic authentication). Empty: no
	// timestamp. The request is bounded by ctx, and by TSATimeout when ctx
	// has no deadline.
	TSA string
	// Time is the signing time written in the signature dictionary (/M);
	// default now. The CMS signingTime attribute always carries the clock
	// time (pdfsign sets it), and with a TSA the timestamp is the trusted
	// time and /M is left out.
	Time time.Time
}

// TSATimeout bounds a timestamp request when the context has no deadline.
const TSATimeout = 30 * time.Second

// Sign writes to out the PDF read from in (size bytes) with an approval
// signature by id appended as an incremental update, so signatures already
// in the document stay valid and a second agency can countersign. The key
// must be RSA or ECDSA (ErrUnsupportedKey otherwise) and its certificate
// valid now. The document is held in memory while signing.
//
// Nothing is written to out unless signing succeeded and the result was
// verified: every signature that was intact before is still intact, and the
// new one is intact and covers the whole file. Input that the PDF parser
// under pdfsign could not handle safely is refused with ErrMalformed.
//
// pdfsign v0.9.0 writes non-ASCII text unescaped, so in such text ĩ and Ĩ
// are written decomposed (Verify composes them back) and parentheses that
// do not pair up become fullwidth ones.
func Sign(ctx context.Context, in io.ReaderAt, size int64, out io.Writer, id *signing.Identity, opts SignOptions) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if id == nil || id.Key == nil || len(id.Chain) == 0 {
		return errors.New("sign PDF: identity without key or certificate")
	}
	leaf := id.Chain[0]
	digest, err := checkKey(id.Key, leaf)
	if err != nil {
		return err
	}
	if now := time.Now(); now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		// The signature would verify but never be trusted.
		return fmt.Errorf("sign PDF: %w: certificate %q valid from %s to %s", signing.ErrExpired, leaf.Subject.CommonName,
			leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	for _, f := range []*string{&opts.Name, &opts.Reason, &opts.Location, &opts.ContactInfo} {
		if *f, err = safeText(*f); err != nil {
			return err
		}
	}
	if opts.Name == "" {
		opts.Name, _ = safeText(leaf.Subject.CommonName)
	}
	if opts.Time.IsZero() {
		opts.Time = time.Now()
	}
	if opts.TSA != "" {
		if _, err := parseTSAURL(opts.TSA); err != nil {
			return fmt.Errorf("sign PDF: %w", err)
		}
	}
	// Vet the input before digitorus/pdf parses it, and note which
	// signatures are intact now, to check that they still are afterwards.
	before, holes, err := inspect(in, size)
	if err != nil {
		return fmt.Errorf("sign PDF: %w", err)
	}
	run, err := longestZeroRun(in, size)
	if err != nil {
		return fmt.Errorf("sign PDF: %w", err)
	}

	data := sign.SignData{
		Signature: sign.SignDataSignature{
			CertType: sign.ApprovalSignature,
			Info: sign.SignDataSignatureInfo{
				Name:        opts.Name,
				Location:    opts.Location,
				Reason:      opts.Reason,
				ContactInfo: opts.ContactInfo,
				Date:        opts.Time,
			},
		},
		Signer:            id.Key,
		DigestAlgorithm:   digest,
		Certificate:       leaf,
		CertificateChains: [][]*x509.Certificate{id.Chain},
	}
	var signed []byte
	if run >= placeholderFloor(leaf, opts.TSA != "") {
		if signed, err = signMasked(ctx, in, size, holes, data, id, opts.TSA); err != nil {
			return fmt.Errorf("sign PDF: %w", err)
		}
	} else {
		if signed, err = signPlain(ctx, in, size, data, opts.TSA); err != nil {
			return fmt.Errorf("sign PDF: %w", err)
		}
	}
	if err := checkSigned(before, signed); err != nil {
		return fmt.Errorf("sign PDF: %w", err)
	}
	if _, err := out.Write(signed); err != nil {
		return fmt.Errorf("sign PDF: write output: %w", err)
	}
	return nil
}

// signPlain signs with pdfsign alone.
func signPlain(ctx context.Context, in io.ReaderAt, size int64, data sign.SignData, tsaURL string) ([]byte, error) {
	var relay *tsaRelay
	if tsaURL != "" {
		var err error
		if relay, err = startTSARelay(ctx, tsaURL); err != nil {
			return nil, err
		}
		defer relay.close()
		data.TSA = sign.TSA{URL: relay.url}
	}
	var buf bytes.Buffer
	err := guarded(ctx, func() error { return runPDFSign(in, size, &buf, data) })
	if relay != nil && relay.failure() != nil {
		return nil, relay.failure() // more precise than pdfsign's "non success response (502)"
	}
	return buf.Bytes(), err
}

// guarded runs fn, which cannot be interrupted, in its own goroutine and
// returns when it does or when ctx ends. fn must write only to memory of its
// own: after ctx ends it runs on unobserved.
func guarded(ctx context.Context, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("%w: pdfsign panicked: %v", ErrMalformed, p)
			}
		}()
		done <- fn()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func runPDFSign(in io.ReaderAt, size int64, out io.Writer, data sign.SignData) error {
	src := io.NewSectionReader(in, 0, size)
	rdr, err := pdf.NewReader(src, size)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := sign.Sign(src, out, rdr, size, data); err != nil {
		return fmt.Errorf("pdfsign: %w", err)
	}
	return nil
}

// checkKey returns the digest to use with key, whose public half must be
// the leaf's.
func checkKey(key crypto.Signer, leaf *x509.Certificate) (crypto.Hash, error) {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if pub, ok := key.Public().(equaler); !ok || !pub.Equal(leaf.PublicKey) {
		return 0, fmt.Errorf("sign PDF: key does not match the certificate of %q", leaf.Subject.CommonName)
	}
	switch k := key.Public().(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return 0, fmt.Errorf("%w: RSA key of %d bits (at least 2048)", ErrUnsupportedKey, k.N.BitLen())
		}
		return crypto.SHA256, nil
	case *ecdsa.PublicKey:
		switch k.Curve.Params().BitSize {
		case 384:
			return crypto.SHA384, nil
		case 521:
			return crypto.SHA512, nil
		}
		return crypto.SHA256, nil
	case ed25519.PublicKey:
		// pdfsign v0.9.0 would pair Ed25519 with SHA-256 where RFC 8419
		// requires SHA-512, and poppler rejects the result as corrupt.
		return 0, fmt.Errorf("%w: Ed25519 (%q); PDF readers expect RSA or ECDSA, issue the agency an ECDSA certificate for documents",
			ErrUnsupportedKey, leaf.Subject.CommonName)
	}
	return 0, fmt.Errorf("%w: %T", ErrUnsupportedKey, key.Public())
}

// safeText works around pdfsign v0.9.0 writing non-ASCII text as raw
// UTF-16BE inside a literal string without escaping: a code unit holding
// the byte '(' or ')' unbalances the string and corrupts the PDF, '\'
// starts an escape, and CR is read back as LF. In Vietnamese this hits ĩ
// and Ĩ (U+0129, U+0128), which are then written decomposed (i + U+0303,
// which Verify composes back), and ASCII ( ) \ next to non-ASCII letters,
// then written as fullwidth forms unless they pair up. Text that still
// would break is refused.
func safeText(s string) (string, error) {
	for i := range len(s) {
		if s[i] >= 0x80 {
			break
		}
		if i == len(s)-1 {
			return s, nil // ASCII: pdfsign escapes it itself
		}
	}
	if utf16Safe(s) {
		return s, nil
	}
	s = strings.NewReplacer("ĩ", "i\u0303", "Ĩ", "I\u0303", "\r", " ").Replace(s)
	if utf16Safe(s) {
		return s, nil
	}
	s = strings.NewReplacer("(", "（", ")", "）", "\\", "＼").Replace(s)
	if utf16Safe(s) {
		return s, nil
	}
	return "", fmt.Errorf("sign PDF: text %q has characters pdfsign v0.9.0 cannot write without corrupting the PDF", s)
}

// utf16Safe reports whether s in UTF-16BE is a valid literal string body.
func utf16Safe(s string) bool {
	depth := 0
	for _, u := range utf16.Encode([]rune(s)) {
		for _, b := range [2]byte{byte(u >> 8), byte(u)} {
			switch b {
			case '(':
				depth++
			case ')':
				if depth--; depth < 0 {
					return false
				}
			case '\\', '\r':
				return false
			}
		}
	}
	return depth == 0
}

// inspect vets input for digitorus/pdf and returns its signatures' state
// and where their /Contents are.
func inspect(in io.ReaderAt, size int64) (*Report, [][2]int64, error) {
	rep, res, err := verify(in, size, nil, verifyOptions{at: time.Now()})
	if res != nil && len(res.hazards) > 0 {
		return nil, nil, fmt.Errorf("%w: refusing to parse %s", ErrMalformed, strings.Join(res.hazards, ", "))
	}
	if errors.Is(err, ErrUnsigned) && !errors.Is(err, ErrMalformed) {
		return &Report{Size: size}, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var holes [][2]int64
	for _, sd := range res.sigs {
		c, _ := sd.dict.key("Contents")
		holes = append(holes, [2]int64{c.start, c.end})
	}
	return rep, holes, nil
}

// checkSigned checks the signed output against the input's signatures.
func checkSigned(before *Report, signed []byte) error {
	after, err := Verify(bytes.NewReader(signed), int64(len(signed)), nil)
	if err != nil {
		return fmt.Errorf("%w: verify the signed output: %w", ErrMalformed, err)
	}
	last := after.Signatures[len(after.Signatures)-1]
	if len(after.Signatures) != len(before.Signatures)+1 || !last.Intact || !last.CoversWholeFile {
		return fmt.Errorf("%w: the signed output does not verify (%d signatures before, %d after; last: %s)",
			ErrMalformed, len(before.Signatures), len(after.Signatures), last.Failure)
	}
	for i, b := range before.Signatures {
		if a := after.Signatures[i]; b.Intact && !a.Intact {
			return fmt.Errorf("%w: signing would break existing signature %d (%s): %s", ErrMalformed, b.Number, b.label(), a.Failure)
		}
	}
	return nil
}
