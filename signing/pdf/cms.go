package pdf

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	// Register the digests CMS signatures name.
	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"
)

// A minimal reader of CMS SignedData (RFC 5652) for detached PDF signatures
// and RFC 3161 timestamp tokens. It keeps the signed attributes as encoded,
// because the signature is over those exact bytes, and hashes the signed
// content outside, so a large PDF is never held in memory twice.

var (
	oidSignedData         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidData               = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidTSTInfo            = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 4}
	oidAttrContentType    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidAttrMessageDigest  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidAttrSigningTime    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}
	oidAttrSigningCert    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 12}
	oidAttrSigningCertV2  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}
	oidAttrTimestampToken = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 14}

	oidSHA1   = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}

	oidRSA          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidRSASHA256    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidRSASHA384    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidRSASHA512    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	oidECPublicKey  = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidECDSASHA256  = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSASHA384  = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSASHA512  = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidEd25519      = asn1.ObjectIdentifier{1, 3, 101, 112}
	errNotSupported = errors.New("not supported")
)

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,tag:0"`
}

type signedData struct {
	Version          int
	DigestAlgorithms asn1.RawValue
	EncapContent     encapContentInfo
	Certificates     asn1.RawValue `asn1:"optional,tag:0"`
	CRLs             asn1.RawValue `asn1:"optional,tag:1"`
	SignerInfos      []signerInfo  `asn1:"set"`
}

type encapContentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"optional,explicit,tag:0"`
}

type signerInfo struct {
	Version            int
	SID                asn1.RawValue
	DigestAlgorithm    pkix.AlgorithmIdentifier
	SignedAttrs        asn1.RawValue `asn1:"optional,tag:0"`
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          []byte
	UnsignedAttrs      asn1.RawValue `asn1:"optional,tag:1"`
}

type attribute struct {
	Type   asn1.ObjectIdentifier
	Values asn1.RawValue `asn1:"set"`
}

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

// cms is one parsed SignedData with a single signer.
type cms struct {
	contentType asn1.ObjectIdentifier
	content     []byte // encapsulated content; nil when detached
	certs       []*x509.Certificate
	signer      signerInfo
	leaf        *x509.Certificate // the signer's certificate
	hash        crypto.Hash
	attrs       []attribute
	signingTime time.Time
	digest      []byte // messageDigest attribute
}

const maxCMSCerts = 64

// parseCMS parses a ContentInfo holding a SignedData with exactly one
// signer and finds the signer's certificate among the embedded ones.
func parseCMS(der []byte) (*cms, error) {
	der, err := toDER(der)
	if err != nil {
		return nil, err
	}
	var ci contentInfo
	if _, err := asn1.Unmarshal(der, &ci); err != nil {
		return nil, fmt.Errorf("CMS ContentInfo: %w", err)
	}
	if !ci.ContentType.Equal(oidSignedData) {
		return nil, fmt.Errorf("CMS content type %s is not SignedData", ci.ContentType)
	}
	var sd signedData
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		return nil, fmt.Errorf("CMS SignedData: %w", err)
	}
	if len(sd.SignerInfos) != 1 {
		return nil, fmt.Errorf("CMS has %d signers, want 1", len(sd.SignerInfos))
	}
	c := &cms{contentType: sd.EncapContent.ContentType, signer: sd.SignerInfos[0]}
	if len(sd.EncapContent.Content.Bytes) > 0 {
		if c.content, err = octets(sd.EncapContent.Content.Bytes); err != nil {
			return nil, fmt.Errorf("CMS encapsulated content: %w", err)
		}
	}
	for rest := sd.Certificates.Bytes; len(rest) > 0; {
		var raw asn1.RawValue
		if rest, err = asn1.Unmarshal(rest, &raw); err != nil {
			return nil, fmt.Errorf("CMS certificates: %w", err)
		}
		if raw.Class != asn1.ClassUniversal || raw.Tag != asn1.TagSequence {
			continue // attribute or other certificate formats
		}
		if len(c.certs) == maxCMSCerts {
			return nil, fmt.Errorf("CMS carries more than %d certificates", maxCMSCerts)
		}
		cert, err := x509.ParseCertificate(raw.FullBytes)
		if err != nil {
			return nil, fmt.Errorf("CMS certificate: %w", err)
		}
		c.certs = append(c.certs, cert)
	}
	if c.leaf, err = c.findSigner(); err != nil {
		return nil, err
	}
	if c.hash, err = hashFor(c.signer.DigestAlgorithm.Algorithm); err != nil {
		return nil, fmt.Errorf("CMS digest algorithm %s: %w", c.signer.DigestAlgorithm.Algorithm, err)
	}
	if len(c.signer.SignedAttrs.Bytes) == 0 {
		// PAdES and RFC 3161 both require signed attributes; without them
		// the signature would be over the whole content, which is never
		// buffered here.
		return nil, errors.New("CMS signer has no signed attributes")
	}
	if c.attrs, err = parseAttributes(c.signer.SignedAttrs.Bytes); err != nil {
		return nil, fmt.Errorf("CMS signed attributes: %w", err)
	}
	for _, a := range c.attrs {
		switch {
		case a.Type.Equal(oidAttrMessageDigest):
			if _, err := asn1.Unmarshal(a.Values.Bytes, &c.digest); err != nil {
				return nil, fmt.Errorf("CMS messageDigest: %w", err)
			}
		case a.Type.Equal(oidAttrContentType):
			var ct asn1.ObjectIdentifier
			if _, err := asn1.Unmarshal(a.Values.Bytes, &ct); err != nil {
				return nil, fmt.Errorf("CMS contentType attribute: %w", err)
			}
			if !ct.Equal(c.contentType) {
				return nil, fmt.Errorf("CMS contentType attribute %s differs from content type %s", ct, c.contentType)
			}
		case a.Type.Equal(oidAttrSigningTime):
			// UTCTime or GeneralizedTime; asn1 accepts both into time.Time.
			_, _ = asn1.Unmarshal(a.Values.Bytes, &c.signingTime)
		}
	}
	if c.digest == nil {
		return nil, errors.New("CMS has no messageDigest attribute")
	}
	return c, nil
}

// octets returns the value of an OCTET STRING, joining the chunks of a
// constructed (BER) one.
func octets(b []byte) ([]byte, error) {
	var raw asn1.RawValue
	if _, err := asn1.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	if raw.Tag != asn1.TagOctetString {
		return nil, fmt.Errorf("tag %d is not an OCTET STRING", raw.Tag)
	}
	if !raw.IsCompound {
		return raw.Bytes, nil
	}
	var out []byte
	for rest := raw.Bytes; len(rest) > 0; {
		var chunk asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &chunk); err != nil {
			return nil, err
		}
		if chunk.IsCompound || chunk.Tag != asn1.TagOctetString {
			return nil, errors.New("nested constructed OCTET STRING")
		}
		out = append(out, chunk.Bytes...)
	}
	return out, nil
}

func parseAttributes(b []byte) ([]attribute, error) {
	var attrs []attribute
	for len(b) > 0 {
		var a attribute
		var err error
		if b, err = asn1.Unmarshal(b, &a); err != nil {
			return nil, err
		}
		attrs = append(attrs, a)
	}
	return attrs, nil
}

func (c *cms) findSigner() (*x509.Certificate, error) {
	sid := c.signer.SID
	switch {
	case sid.Class == asn1.ClassUniversal && sid.Tag == asn1.TagSequence:
		var ias issuerAndSerial
		if _, err := asn1.Unmarshal(sid.FullBytes, &ias); err != nil {
			return nil, fmt.Errorf("CMS signer identifier: %w", err)
		}
		for _, cert := range c.certs {
			if cert.SerialNumber.Cmp(ias.Serial) == 0 && bytes.Equal(cert.RawIssuer, ias.Issuer.FullBytes) {
				return cert, nil
			}
		}
	case sid.Class == asn1.ClassContextSpecific && sid.Tag == 0:
		for _, cert := range c.certs {
			if len(cert.SubjectKeyId) > 0 && bytes.Equal(cert.SubjectKeyId, sid.Bytes) {
				return cert, nil
			}
		}
	default:
		return nil, errors.New("CMS signer identifier of unknown form")
	}
	return nil, errors.New("CMS does not carry the signer's certificate")
}

// verify checks that digest (of the signed content, computed with c.hash)
// matches the messageDigest attribute, that the signature over the signed
// attributes verifies with the signer's key, and that an ESS
// signing-certificate attribute, if present, names the signer's
// certificate (so another certificate for the same key cannot be swapped in).
func (c *cms) verify(digest []byte) error {
	if !bytes.Equal(digest, c.digest) {
		return errors.New("digest of the signed bytes does not match the signature's messageDigest")
	}
	alg, err := signatureAlgorithm(c.signer.SignatureAlgorithm.Algorithm, c.signer.DigestAlgorithm.Algorithm, c.leaf)
	if err != nil {
		return err
	}
	// The signature is over the DER of the attributes as a SET OF, that is
	// the [0] IMPLICIT encoding with its tag replaced by SET.
	signed := append([]byte{0x31}, c.signer.SignedAttrs.FullBytes[1:]...)
	if err := c.leaf.CheckSignature(alg, signed, c.signer.Signature); err != nil {
		return fmt.Errorf("signature does not verify with the certificate of %q: %w", c.leaf.Subject.CommonName, err)
	}
	return c.checkSigningCertificate()
}

func (c *cms) checkSigningCertificate() error {
	for _, a := range c.attrs {
		v2 := a.Type.Equal(oidAttrSigningCertV2)
		if !v2 && !a.Type.Equal(oidAttrSigningCert) {
			continue
		}
		h, want, err := essCertHash(a.Values.Bytes, v2)
		if err != nil {
			return fmt.Errorf("signing-certificate attribute: %w", err)
		}
		hh := h.New()
		hh.Write(c.leaf.Raw)
		if !bytes.Equal(hh.Sum(nil), want) {
			return errors.New("signing-certificate attribute names another certificate than the signer's")
		}
	}
	return nil
}

// essCertHash returns the hash algorithm and certificate hash of the first
// ESSCertID(v2) of a SigningCertificate(V2) (RFC 2634, RFC 5035):
//
//	SigningCertificateV2 ::= SEQUENCE { certs SEQUENCE OF ESSCertIDv2, ... }
//	ESSCertIDv2 ::= SEQUENCE { hashAlgorithm DEFAULT sha256, certHash OCTET STRING, ... }
//	ESSCertID   ::= SEQUENCE { certHash OCTET STRING (SHA-1), ... }
func essCertHash(b []byte, v2 bool) (crypto.Hash, []byte, error) {
	var sc, certs, id, el asn1.RawValue
	if _, err := asn1.Unmarshal(b, &sc); err != nil {
		return 0, nil, err
	}
	if _, err := asn1.Unmarshal(sc.Bytes, &certs); err != nil {
		return 0, nil, err
	}
	if _, err := asn1.Unmarshal(certs.Bytes, &id); err != nil {
		return 0, nil, err
	}
	rest, err := asn1.Unmarshal(id.Bytes, &el)
	if err != nil {
		return 0, nil, err
	}
	h := crypto.SHA1
	if v2 {
		h = crypto.SHA256
		if el.Class == asn1.ClassUniversal && el.Tag == asn1.TagSequence {
			var alg pkix.AlgorithmIdentifier
			if _, err := asn1.Unmarshal(el.FullBytes, &alg); err != nil {
				return 0, nil, err
			}
			if h, err = hashFor(alg.Algorithm); err != nil {
				return 0, nil, fmt.Errorf("hash %s: %w", alg.Algorithm, err)
			}
			if _, err := asn1.Unmarshal(rest, &el); err != nil {
				return 0, nil, err
			}
		}
	}
	if el.Class != asn1.ClassUniversal || el.Tag != asn1.TagOctetString {
		return 0, nil, errors.New("no certificate hash")
	}
	return h, el.Bytes, nil
}

func hashFor(oid asn1.ObjectIdentifier) (crypto.Hash, error) {
	switch {
	case oid.Equal(oidSHA256):
		return crypto.SHA256, nil
	case oid.Equal(oidSHA384):
		return crypto.SHA384, nil
	case oid.Equal(oidSHA512):
		return crypto.SHA512, nil
	case oid.Equal(oidSHA1):
		return crypto.SHA1, nil
	}
	return 0, errNotSupported
}

// signatureAlgorithm maps the CMS signature and digest algorithms onto
// x509's, which refuses SHA-1 signatures as insecure.
func signatureAlgorithm(sig, digest asn1.ObjectIdentifier, leaf *x509.Certificate) (x509.SignatureAlgorithm, error) {
	h, err := hashFor(digest)
	if err != nil {
		return 0, fmt.Errorf("digest algorithm %s: %w", digest, err)
	}
	pick := func(sha256, sha384, sha512 x509.SignatureAlgorithm) (x509.SignatureAlgorithm, error) {
		switch h {
		case crypto.SHA256:
			return sha256, nil
		case crypto.SHA384:
			return sha384, nil
		case crypto.SHA512:
			return sha512, nil
		}
		return 0, fmt.Errorf("digest %s refused: SHA-1 is broken for signatures", h)
	}
	switch {
	case sig.Equal(oidRSA), sig.Equal(oidRSASHA256), sig.Equal(oidRSASHA384), sig.Equal(oidRSASHA512):
		return pick(x509.SHA256WithRSA, x509.SHA384WithRSA, x509.SHA512WithRSA)
	case sig.Equal(oidECPublicKey), sig.Equal(oidECDSASHA256), sig.Equal(oidECDSASHA384), sig.Equal(oidECDSASHA512):
		return pick(x509.ECDSAWithSHA256, x509.ECDSAWithSHA384, x509.ECDSAWithSHA512)
	case sig.Equal(oidEd25519):
		return x509.PureEd25519, nil
	}
	return 0, fmt.Errorf("signature algorithm %s: %w", sig, errNotSupported)
}

// unsignedAttr returns the first value of the unsigned attribute oid.
func (c *cms) unsignedAttr(oid asn1.ObjectIdentifier) ([]byte, bool, error) {
	if len(c.signer.UnsignedAttrs.Bytes) == 0 {
		return nil, false, nil
	}
	attrs, err := parseAttributes(c.signer.UnsignedAttrs.Bytes)
	if err != nil {
		return nil, false, fmt.Errorf("CMS unsigned attributes: %w", err)
	}
	for _, a := range attrs {
		if a.Type.Equal(oid) {
			var v asn1.RawValue
			if _, err := asn1.Unmarshal(a.Values.Bytes, &v); err != nil {
				return nil, true, err
			}
			return v.FullBytes, true, nil
		}
	}
	return nil, false, nil
}

// tstInfo holds the leading fields of an RFC 3161 TSTInfo; the optional
// trailing ones are not needed.
type tstInfo struct {
	Version        int
	Policy         asn1.ObjectIdentifier
	MessageImprint struct {
		HashAlgorithm pkix.AlgorithmIdentifier
		HashedMessage []byte
	}
	SerialNumber *big.Int
	GenTime      time.Time `asn1:"generalized"`
}
