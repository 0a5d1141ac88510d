package pdf

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
)

// Report is the outcome of Verify: one entry per signature, in signing
// order (by where their byte ranges end).
type Report struct {
	Size       int64       `json:"size"` // bytes verified
	Signatures []Signature `json:"signatures"`
}

// Signature describes one signature of the document.
type Signature struct {
	Number      int    `json:"number"`           // 1 for the first signature made, as pdfsig counts
	Object      int64  `json:"object"`           // PDF object holding the signature dictionary
	Signer      string `json:"signer,omitempty"` // common name of the signer's certificate
	Agency      string `json:"agency,omitempty"` // the agency the certificate names; to rely on only when Trusted
	Issuer      string `json:"issuer,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"` // hex SHA-256 of the signer's certificate

	Name        string `json:"name,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Location    string `json:"location,omitempty"`
	ContactInfo string `json:"contact_info,omitempty"`
	SubFilter   string `json:"sub_filter,omitempty"`

	// SigningTime is the time the signer claims: the CMS signingTime
	// attribute, else the dictionary's /M.
	SigningTime *time.Time `json:"signing_time,omitempty"`
	Timestamp   *Timestamp `json:"timestamp,omitempty"`

	ByteRange       []int64 `json:"byte_range"`
	Intact          bool    `json:"intact"`            // the CMS signature verifies over the byte ranges
	Trusted         bool    `json:"trusted"`           // the signer's chain reaches a trusted root, valid and unrevoked
	CoversWholeFile bool    `json:"covers_whole_file"` // the byte ranges end at the end of the file
	Failure         string  `json:"failure,omitempty"` // why Intact or Trusted is false

	// Certificate is the signer's certificate, when the CMS could be read.
	Certificate *x509.Certificate `json:"-"`

	err error // first failure, for Report.Err
}

// Timestamp is an RFC 3161 timestamp over a signature value.
type Timestamp struct {
	Time      time.Time `json:"time"`
	Authority string    `json:"authority,omitempty"` // the TSA certificate's common name
	Verified  bool      `json:"verified"`            // the token's signature is valid and it covers this signature
	Trusted   bool      `json:"trusted"`             // the TSA's chain reaches a trusted root
	Failure   string    `json:"failure,omitempty"`
}

// OK reports whether the document is signed, every signature is intact and
// trusted, and the last one covers the whole file.
func (r *Report) OK() bool { return r.Err() == nil }

// Err returns nil when OK, else why not: ErrUnsigned, ErrInvalidSignature,
// ErrModifiedAfterSigning or the signing package's trust errors
// (signing.ErrUntrusted, ErrExpired, ErrRevoked), wrapped with details.
func (r *Report) Err() error {
	if r == nil || len(r.Signatures) == 0 {
		return ErrUnsigned
	}
	for i := range r.Signatures {
		s := &r.Signatures[i]
		if s.Intact && s.Trusted {
			continue
		}
		err := s.err
		switch {
		case err != nil:
		case !s.Intact:
			err = fmt.Errorf("%w: %s", ErrInvalidSignature, s.Failure)
		default:
			err = fmt.Errorf("%w: %s", signing.ErrUntrusted, s.Failure)
		}
		return fmt.Errorf("signature %d (%s): %w", s.Number, s.label(), err)
	}
	last := r.Signatures[len(r.Signatures)-1]
	if !last.CoversWholeFile {
		end := int64(0)
		if len(last.ByteRange) == 4 {
			end = last.ByteRange[2] + last.ByteRange[3]
		}
		return fmt.Errorf("%w: signature %d (%s) covers %d of %d bytes", ErrModifiedAfterSigning,
			last.Number, last.label(), end, r.Size)
	}
	return nil
}

func (s *Signature) label() string {
	if s.Agency != "" {
		return s.Agency
	}
	if s.Signer != "" {
		return s.Signer
	}
	return fmt.Sprintf("object %d", s.Object)
}

// MarshalJSON adds "ok" and, when not OK, "error" to the report.
func (r Report) MarshalJSON() ([]byte, error) {
	type plain Report // drops the methods, so no recursion
	out := struct {
		OK    bool   `json:"ok"`
		Error string `json:"error,omitempty"`
		plain
	}{plain: plain(r)}
	if err := r.Err(); err != nil {
		out.Error = err.Error()
	} else {
		out.OK = true
	}
	if out.Signatures == nil {
		out.Signatures = []Signature{}
	}
	return json.Marshal(out)
}

// VerifyOption adjusts Verify.
type VerifyOption func(*verifyOptions)

type verifyOptions struct{ at time.Time }

// At checks certificates as of t instead of now, for signatures without a
// trusted timestamp (an auditor replaying history).
func At(t time.Time) VerifyOption { return func(o *verifyOptions) { o.at = t } }

// Verify checks every signature in the PDF read from r (size bytes).
//
// A signature is intact when its byte ranges are well formed, exclude
// exactly its own /Contents, and the CMS signature in /Contents verifies
// over them. It is trusted when the signer's chain reaches a root of trust
// and is valid at the signing time proven by a trusted timestamp, or else
// both at the claimed signing time and now (see At), and the certificate
// was not revoked (by fingerprint or CRL) before signing; without a trusted
// timestamp the claimed time counts back at most signing.MaxBackdate for
// revocation. trust may be nil: nothing is trusted.
//
// Verify returns an error only when it cannot judge the document: ErrNotPDF,
// ErrMalformed (also for more than 64 signature dictionaries), ErrUnsigned,
// ErrTooLarge or a read error. A judged document gives a Report; see
// Report.OK and Report.Err. It is safe for concurrent use.
func Verify(r io.ReaderAt, size int64, trust *signing.Trust, opts ...VerifyOption) (*Report, error) {
	o := verifyOptions{}
	for _, opt := range opts {
		opt(&o)
	}
	if o.at.IsZero() {
		o.at = time.Now()
	}
	rep, _, err := verify(r, size, trust, o)
	return rep, err
}

// verify is Verify, also returning what the scan found. A document without
// signatures gives ErrUnsigned with the scan result.
func verify(r io.ReaderAt, size int64, trust *signing.Trust, o verifyOptions) (rep *Report, res *scanResult, err error) {
	// The parsers here are written not to panic; this is the last line
	// should a library below (x509, asn1) still do so on hostile input.
	defer func() {
		if p := recover(); p != nil {
			rep, err = nil, fmt.Errorf("%w: verifier panicked: %v", ErrMalformed, p)
		}
	}()
	if err := checkHeader(r, size); err != nil {
		return nil, nil, err
	}
	res, err = scan(r, size)
	if err != nil {
		return nil, nil, fmt.Errorf("verify PDF: %w", err)
	}
	if !res.sawEOF {
		return nil, res, fmt.Errorf("%w: no %%%%EOF marker (truncated file?)", ErrMalformed)
	}
	if len(res.sigs) == 0 {
		if !res.endsAtEOF {
			// Most likely a signed file cut inside its signature.
			return nil, res, fmt.Errorf("%w: data after the last %%%%EOF, truncated? (%w)", ErrMalformed, ErrUnsigned)
		}
		return nil, res, fmt.Errorf("%w: no signature dictionary in %d bytes", ErrUnsigned, size)
	}
	if res.sigCount > maxSignatures {
		return nil, res, fmt.Errorf("%w: %d signature dictionaries, at most %d are judged", ErrMalformed, res.sigCount, maxSignatures)
	}
	rep = &Report{Size: size}
	digests := map[digestKey][]byte{} // hostile files repeat one byte range
	for _, sd := range res.sigs {
		rep.Signatures = append(rep.Signatures, checkSignature(r, size, sd, trust, o, digests))
	}
	end := func(s Signature) int64 {
		if len(s.ByteRange) != 4 {
			return -1
		}
		return s.ByteRange[2] + s.ByteRange[3]
	}
	slices.SortStableFunc(rep.Signatures, func(a, b Signature) int {
		if d := end(a) - end(b); d != 0 {
			return int(max(-1, min(1, d)))
		}
		return int(max(-1, min(1, a.Object-b.Object)))
	})
	for i := range rep.Signatures {
		rep.Signatures[i].Number = i + 1
	}
	return rep, res, nil
}

// checkHeader bounds the size and looks for %PDF- in the first KiB, where
// ISO 32000 readers look for it.
func checkHeader(r io.ReaderAt, size int64) error {
	if size > MaxSize {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, size, MaxSize)
	}
	if size < 0 {
		return fmt.Errorf("%w: negative size %d", ErrNotPDF, size)
	}
	head := make([]byte, min(size, 1024))
	if n, err := r.ReadAt(head, 0); n < len(head) {
		return fmt.Errorf("read PDF header: %w", err)
	}
	if !bytes.Contains(head, []byte("%PDF-")) {
		return fmt.Errorf("%w: no %%PDF- header in the first %d bytes", ErrNotPDF, len(head))
	}
	return nil
}

// checkSignature judges one signature dictionary.
func checkSignature(r io.ReaderAt, size int64, sd sigDict, trust *signing.Trust, o verifyOptions, digests map[digestKey][]byte) (s Signature) {
	d := sd.dict
	s = Signature{
		Object:      sd.object,
		Name:        textString(d, "Name"),
		Reason:      textString(d, "Reason"),
		Location:    textString(d, "Location"),
		ContactInfo: textString(d, "ContactInfo"),
		SubFilter:   d.name("SubFilter"),
		ByteRange:   []int64{},
	}
	var failures []string
	fail := func(err error) {
		if s.err == nil {
			s.err = err
		}
		failures = append(failures, err.Error())
	}
	defer func() { s.Failure = strings.Join(failures, "; ") }()

	intact := true
	broken := func(format string, args ...any) {
		intact = false
		fail(fmt.Errorf("%w: "+format, append([]any{ErrInvalidSignature}, args...)...))
	}
	// Byte ranges: [0 a b c] where [a, b) is exactly this /Contents.
	br, _ := d.key("ByteRange")
	for _, x := range br.arr {
		s.ByteRange = append(s.ByteRange, x.i)
		if x.kind != tInt {
			s.ByteRange = nil
			break
		}
	}
	contents, _ := d.key("Contents")
	rangesOK := false
	switch {
	case len(s.ByteRange) != 4:
		broken("ByteRange %s is not four integers", fmtRange(br))
		s.ByteRange = []int64{}
	case s.ByteRange[0] != 0 || s.ByteRange[1] < 0 || s.ByteRange[2] < s.ByteRange[1] || s.ByteRange[3] < 0:
		broken("ByteRange %v does not start at 0 and ascend", s.ByteRange)
	case s.ByteRange[2]+s.ByteRange[3] > size:
		broken("ByteRange %v ends past the end of the file (%d bytes): truncated?", s.ByteRange, size)
	case !contents.hex || contents.bad:
		broken("/Contents is not a hexadecimal string")
	case s.ByteRange[1] != contents.start || s.ByteRange[2] != contents.end:
		broken("ByteRange %v does not exclude exactly its /Contents (bytes %d to %d)", s.ByteRange, contents.start, contents.end)
	default:
		rangesOK = true
		s.CoversWholeFile = s.ByteRange[2]+s.ByteRange[3] == size
	}
	if m, ok := d.key("M"); ok {
		if t, ok := parsePDFDate(m.s); ok {
			s.SigningTime = &t
		}
	}
	switch s.SubFilter {
	case "adbe.pkcs7.detached", "ETSI.CAdES.detached":
	default:
		broken("SubFilter %q not supported (adbe.pkcs7.detached, ETSI.CAdES.detached)", s.SubFilter)
	}
	if contents.truncated {
		broken("/Contents too large (over %d bytes, or %d for all signatures)", maxStringBytes, maxSigBytes)
		return s
	}
	c, err := parseCMS([]byte(contents.s))
	if err != nil {
		broken("%v", err)
		return s
	}
	s.Certificate = c.leaf
	s.Signer = c.leaf.Subject.CommonName
	s.Issuer = c.leaf.Issuer.CommonName
	s.Fingerprint = envelope.Fingerprint(c.leaf)
	if trust != nil {
		s.Agency = trust.AgencyOf(c.leaf)
	} else {
		s.Agency = signing.AgencyOf(c.leaf)
	}
	if !c.signingTime.IsZero() {
		t := c.signingTime
		s.SigningTime = &t
	}
	if !c.contentType.Equal(oidData) || c.content != nil {
		broken("CMS is not a detached signature of data")
	}
	if intact && rangesOK {
		key := digestKey{c.hash, [4]int64(s.ByteRange)}
		sum, ok := digests[key]
		if !ok {
			h := c.hash.New()
			for _, rg := range [][2]int64{{s.ByteRange[0], s.ByteRange[1]}, {s.ByteRange[2], s.ByteRange[3]}} {
				if _, err := io.Copy(h, io.NewSectionReader(r, rg[0], rg[1])); err != nil {
					broken("read signed bytes %d+%d: %v", rg[0], rg[1], err)
					break
				}
			}
			sum = h.Sum(nil)
			if intact {
				digests[key] = sum
			}
		}
		if intact {
			if err := c.verify(sum); err != nil {
				broken("%v", err)
			}
		}
	}
	s.Intact = intact

	if tok, ok, err := c.unsignedAttr(oidAttrTimestampToken); err != nil {
		s.Timestamp = &Timestamp{Failure: err.Error()}
	} else if ok {
		s.Timestamp = checkTimestamp(tok, c.signer.Signature, trust)
	}

	if err := checkTrust(&s, c, trust, o); err != nil {
		fail(err)
	} else {
		s.Trusted = true
	}
	return s
}

type digestKey struct {
	hash   crypto.Hash
	brange [4]int64
}

// checkTrust checks the signer's chain at the proven or claimed times, and
// revocation.
func checkTrust(s *Signature, c *cms, trust *signing.Trust, o verifyOptions) error {
	if trust == nil {
		return fmt.Errorf("%w: no roots of trust given", signing.ErrUntrusted)
	}
	chain := []*x509.Certificate{c.leaf}
	for _, cert := range c.certs {
		if cert != c.leaf {
			chain = append(chain, cert)
		}
	}
	var signedAt time.Time // the time revocation is judged at
	var checks []time.Time
	if ts := s.Timestamp; ts != nil && ts.Verified && ts.Trusted {
		// A trusted timestamp proves the signature existed then: the
		// certificate must have been valid at that time, not now.
		signedAt = ts.Time
		checks = []time.Time{ts.Time}
	} else {
		if s.SigningTime != nil {
			checks = append(checks, *s.SigningTime)
		}
		checks = append(checks, o.at)
		// The claimed time is the signer's word: as for envelopes, it
		// moves revocation back by at most signing.MaxBackdate.
		signedAt = o.at.Add(-signing.MaxBackdate)
		if s.SigningTime != nil && s.SigningTime.After(signedAt) {
			signedAt = *s.SigningTime
		}
	}
	for _, at := range checks {
		if err := trust.VerifyChain(chain, at); err != nil {
			return err
		}
	}
	// By fingerprint or by a CRL entry of the issuer.
	if revokedAt, ok := trust.RevocationOf(c.leaf); ok && !signedAt.Before(revokedAt) {
		return fmt.Errorf("%w: certificate %q revoked at %s, signature made at %s", signing.ErrRevoked, c.leaf.Subject.CommonName,
			revokedAt.UTC().Format(time.RFC3339), timeOrUnknown(signedAt))
	}
	return nil
}

func timeOrUnknown(t time.Time) string {
	if t.IsZero() {
		return "an unknown time"
	}
	return t.UTC().Format(time.RFC3339)
}

// checkTimestamp verifies an RFC 3161 token over sigValue (the signer's
// signature octets, as RFC 3161 appendix A prescribes).
func checkTimestamp(token, sigValue []byte, trust *signing.Trust) *Timestamp {
	ts := &Timestamp{}
	c, err := parseCMS(token)
	if err != nil {
		ts.Failure = "timestamp token: " + err.Error()
		return ts
	}
	ts.Authority = c.leaf.Subject.CommonName
	if !c.contentType.Equal(oidTSTInfo) || c.content == nil {
		ts.Failure = fmt.Sprintf("timestamp token content type %s is not TSTInfo", c.contentType)
		return ts
	}
	var info tstInfo
	if _, err := unmarshalDER(c.content, &info); err != nil {
		ts.Failure = "timestamp TSTInfo: " + err.Error()
		return ts
	}
	ts.Time = info.GenTime
	h := c.hash.New()
	h.Write(c.content)
	if err := c.verify(h.Sum(nil)); err != nil {
		ts.Failure = "timestamp token: " + err.Error()
		return ts
	}
	ih, err := hashFor(info.MessageImprint.HashAlgorithm.Algorithm)
	if err != nil {
		ts.Failure = fmt.Sprintf("timestamp imprint algorithm %s: %v", info.MessageImprint.HashAlgorithm.Algorithm, err)
		return ts
	}
	hh := ih.New()
	hh.Write(sigValue)
	if !bytes.Equal(hh.Sum(nil), info.MessageImprint.HashedMessage) {
		ts.Failure = "timestamp is over other data than this signature"
		return ts
	}
	ts.Verified = true
	if trust == nil {
		ts.Failure = "no roots of trust given"
		return ts
	}
	inter := x509.NewCertPool()
	for _, cert := range c.certs {
		inter.AddCert(cert)
	}
	if _, err := c.leaf.Verify(x509.VerifyOptions{
		Roots:         trust.Pool(),
		Intermediates: inter,
		CurrentTime:   ts.Time,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping},
	}); err != nil {
		ts.Failure = fmt.Sprintf("timestamp authority %q: %v", ts.Authority, err)
		return ts
	}
	ts.Trusted = true
	return ts
}

func fmtRange(v value) string {
	if v.kind != tArrayOpen {
		return "(missing)"
	}
	parts := make([]string, 0, len(v.arr))
	for _, x := range v.arr {
		if x.kind == tInt {
			parts = append(parts, fmt.Sprint(x.i))
		} else {
			parts = append(parts, "?")
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// textString decodes a PDF text string: UTF-16BE or UTF-8 with a byte
// order mark, else PDFDocEncoding (read as Latin-1, which it matches for
// letters).
func textString(d value, k string) string {
	v, ok := d.key(k)
	if !ok || v.kind != tString {
		return ""
	}
	s := v.s
	switch {
	case strings.HasPrefix(s, "\xfe\xff"):
		b := []byte(s[2:])
		u := make([]uint16, len(b)/2)
		for i := range u {
			u[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
		}
		s = string(utf16.Decode(u))
	case strings.HasPrefix(s, "\xef\xbb\xbf"):
		s = strings.ToValidUTF8(s[3:], "\uFFFD")
	default:
		r := make([]rune, len(s))
		for i := range len(s) {
			r[i] = rune(s[i])
		}
		s = string(r)
	}
	// Sign writes ĩ and Ĩ decomposed (see safeText); show them composed.
	return strings.NewReplacer("i\u0303", "ĩ", "I\u0303", "Ĩ").Replace(s)
}

// parsePDFDate parses D:YYYYMMDDHHmmSSOHH'mm', whose parts after the year
// are optional.
func parsePDFDate(s string) (time.Time, bool) {
	s = strings.TrimPrefix(s, "D:")
	n := 0
	for n < len(s) && n < 14 && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	if n < 4 || n%2 != 0 {
		return time.Time{}, false
	}
	digits := s[:n] + "0101000000"[n-4:]
	t, err := time.Parse("20060102150405", digits)
	if err != nil {
		return time.Time{}, false
	}
	if rest := strings.ReplaceAll(s[n:], "'", ""); len(rest) >= 3 && (rest[0] == '+' || rest[0] == '-') {
		h, m := rest[1:3], "00"
		if len(rest) >= 5 {
			m = rest[3:5]
		}
		off, err := time.Parse("1504", h+m)
		if err != nil {
			return time.Time{}, false
		}
		secs := off.Hour()*3600 + off.Minute()*60
		if rest[0] == '-' {
			secs = -secs
		}
		t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.FixedZone("", secs))
	}
	return t, true
}

// unmarshalDER is asn1.Unmarshal after toDER: TSTInfo may be BER too.
func unmarshalDER(b []byte, v any) ([]byte, error) {
	der, err := toDER(b)
	if err != nil {
		return nil, err
	}
	return asn1.Unmarshal(der, v)
}
