package tsa

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/digitorus/pkcs7"
	"github.com/digitorus/timestamp"
)

// MaxResponseSize bounds a TimeStampResp read from a TSA or a file: a
// token with its certificates is a few kilobytes.
const MaxResponseSize = 64 << 10

var (
	oidSigningCertificate   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 12}
	oidSigningCertificateV2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}
	oidExtKeyUsage          = asn1.ObjectIdentifier{2, 5, 29, 37}
	hashOIDs                = map[string]crypto.Hash{
		"1.3.14.3.2.26":          crypto.SHA1,
		"2.16.840.1.101.3.4.2.1": crypto.SHA256,
		"2.16.840.1.101.3.4.2.2": crypto.SHA384,
		"2.16.840.1.101.3.4.2.3": crypto.SHA512,
	}
)

// Token is a parsed time-stamp: the TSA's statement that Digest existed
// at Time.
type Token struct {
	// Raw is the DER TimeStampResp as the TSA sent it (the .tsr file).
	Raw []byte
	// Time is the token's genTime, Accuracy its declared accuracy.
	Time     time.Time
	Accuracy time.Duration
	Serial   *big.Int
	Policy   asn1.ObjectIdentifier
	// Hash and Digest are the message imprint.
	Hash   crypto.Hash
	Digest []byte
	Nonce  *big.Int
	// Signer is the certificate that signed the token, Certificates all
	// the token carries.
	Signer       *x509.Certificate
	Certificates []*x509.Certificate
}

// ParseResponse reads a DER TimeStampResp: a granted status, a CMS
// SignedData over a TSTInfo whose signature holds, signed by the
// certificate its ESS signing-certificate attribute names (the token must
// carry it). It does not decide whom to trust: see Verify.
func ParseResponse(der []byte) (*Token, error) {
	if len(der) > MaxResponseSize {
		return nil, fmt.Errorf("%w: response of %d bytes, at most %d", ErrMalformed, len(der), MaxResponseSize)
	}
	var resp struct {
		Status struct {
			Status       int
			StatusString []string       `asn1:"optional,utf8"`
			FailInfo     asn1.BitString `asn1:"optional"`
		}
		Token asn1.RawValue `asn1:"optional"`
	}
	rest, err := asn1.Unmarshal(der, &resp)
	if err != nil {
		return nil, fmt.Errorf("%w: not a TimeStampResp: %v", ErrMalformed, err)
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("%w: %d bytes after the TimeStampResp", ErrMalformed, len(rest))
	}
	if s := resp.Status.Status; s != 0 && s != 1 {
		return nil, fmt.Errorf("%w: status %d %q (failure bits %x)", ErrRejected, s, resp.Status.StatusString, resp.Status.FailInfo.Bytes)
	}
	if len(resp.Token.FullBytes) == 0 {
		return nil, fmt.Errorf("%w: granted status without a token", ErrMalformed)
	}
	ts, err := timestamp.Parse(resp.Token.FullBytes)
	if err != nil {
		var me *pkcs7.MessageDigestMismatchError
		if errors.As(err, &me) || isSignatureError(err) {
			return nil, fmt.Errorf("%w: %v", ErrSignature, err)
		}
		return nil, fmt.Errorf("%w: token: %v", ErrMalformed, err)
	}
	p7, err := pkcs7.Parse(resp.Token.FullBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: token: %v", ErrMalformed, err)
	}
	signer := p7.GetOnlySigner()
	if signer == nil {
		return nil, fmt.Errorf("%w: the token must have one signer and carry its certificate", ErrSignature)
	}
	if err := p7.Verify(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	if err := checkSigningCertificate(p7, signer); err != nil {
		return nil, err
	}
	return &Token{Raw: der, Time: ts.Time.UTC(), Accuracy: ts.Accuracy, Serial: ts.SerialNumber, Policy: ts.Policy,
		Hash: ts.HashAlgorithm, Digest: ts.HashedMessage, Nonce: ts.Nonce, Signer: signer, Certificates: p7.Certificates}, nil
}

func isSignatureError(err error) bool {
	return errors.Is(err, x509.ErrUnsupportedAlgorithm) || bytes.Contains([]byte(err.Error()), []byte("verification"))
}

type essCertIDv2 struct {
	HashAlgorithm pkix.AlgorithmIdentifier `asn1:"optional"`
	CertHash      []byte
	IssuerSerial  asn1.RawValue `asn1:"optional"`
}

type essCertID struct {
	CertHash     []byte
	IssuerSerial asn1.RawValue `asn1:"optional"`
}

// checkSigningCertificate checks the ESS attribute (RFC 5816 / RFC 2634)
// that binds the signature to one certificate: without it, anyone holding
// another certificate with the same key could pass for the TSA.
func checkSigningCertificate(p7 *pkcs7.PKCS7, signer *x509.Certificate) error {
	var v2 struct {
		Certs    []essCertIDv2
		Policies asn1.RawValue `asn1:"optional"`
	}
	if err := p7.UnmarshalSignedAttribute(oidSigningCertificateV2, &v2); err == nil && len(v2.Certs) > 0 {
		h := crypto.SHA256
		if len(v2.Certs[0].HashAlgorithm.Algorithm) > 0 {
			var ok bool
			if h, ok = hashOIDs[v2.Certs[0].HashAlgorithm.Algorithm.String()]; !ok || h == crypto.SHA1 {
				return fmt.Errorf("%w: signing-certificate-v2 hash %s not supported", ErrSignature, v2.Certs[0].HashAlgorithm.Algorithm)
			}
		}
		d := h.New()
		d.Write(signer.Raw)
		if !bytes.Equal(d.Sum(nil), v2.Certs[0].CertHash) {
			return fmt.Errorf("%w: the signing-certificate-v2 attribute names another certificate than the signer %q", ErrSignature, signer.Subject.CommonName)
		}
		return nil
	}
	var v1 struct {
		Certs    []essCertID
		Policies asn1.RawValue `asn1:"optional"`
	}
	if err := p7.UnmarshalSignedAttribute(oidSigningCertificate, &v1); err == nil && len(v1.Certs) > 0 {
		sum := sha1.Sum(signer.Raw)
		if !bytes.Equal(sum[:], v1.Certs[0].CertHash) {
			return fmt.Errorf("%w: the signing-certificate attribute names another certificate than the signer %q", ErrSignature, signer.Subject.CommonName)
		}
		return nil
	}
	return fmt.Errorf("%w: no ESS signing-certificate attribute (RFC 3161 requires one)", ErrSignature)
}

// IsTimeStampingCertificate reports whether c may sign time-stamps as RFC
// 3161 requires: its extended key usage is id-kp-timeStamping alone, and
// marked critical.
func IsTimeStampingCertificate(c *x509.Certificate) error {
	if len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageTimeStamping || len(c.UnknownExtKeyUsage) != 0 {
		return fmt.Errorf("%w: certificate %q: extended key usage must be id-kp-timeStamping alone", ErrUntrusted, c.Subject.CommonName)
	}
	critical := slices.ContainsFunc(c.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(oidExtKeyUsage) && e.Critical })
	if !critical {
		return fmt.Errorf("%w: certificate %q: the id-kp-timeStamping extended key usage is not critical", ErrUntrusted, c.Subject.CommonName)
	}
	return nil
}

// Verify checks that t covers digest (hashed with t's algorithm; give the
// data's digest under that algorithm, see Covers) and that its signer is a
// time-stamping certificate that chains to one of roots at t.Time.
func (t *Token) Verify(digest []byte, roots []*x509.Certificate) error {
	if !bytes.Equal(t.Digest, digest) {
		return fmt.Errorf("%w: the token covers %s digest %x, the data's is %x", ErrImprint, t.Hash, t.Digest, digest)
	}
	return t.VerifySigner(roots)
}

// Covers checks that t was made for data: its imprint is data's digest.
func (t *Token) Covers(data []byte) error {
	if !t.Hash.Available() || t.Hash == crypto.SHA1 {
		return fmt.Errorf("%w: imprint hash %v not accepted", ErrImprint, t.Hash)
	}
	h := t.Hash.New()
	h.Write(data)
	if !bytes.Equal(h.Sum(nil), t.Digest) {
		return fmt.Errorf("%w: the token covers %s digest %x, not the data's", ErrImprint, t.Hash, t.Digest)
	}
	return nil
}

// VerifySigner checks that t's signer is a time-stamping certificate
// chaining to one of roots at the token's time.
func (t *Token) VerifySigner(roots []*x509.Certificate) error {
	if len(roots) == 0 {
		return fmt.Errorf("%w: no trusted TSA root given", ErrUntrusted)
	}
	if err := IsTimeStampingCertificate(t.Signer); err != nil {
		return err
	}
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	inter := x509.NewCertPool()
	for _, c := range t.Certificates {
		inter.AddCert(c)
	}
	if _, err := t.Signer.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: t.Time,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping}}); err != nil {
		return fmt.Errorf("%w: TSA certificate %q at %s: %v", ErrUntrusted, t.Signer.Subject.CommonName, t.Time.Format(time.RFC3339), err)
	}
	return nil
}

// TSAName names the token's signer for people: its subject's common name.
func (t *Token) TSAName() string { return t.Signer.Subject.CommonName }
