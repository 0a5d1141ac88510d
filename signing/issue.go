package signing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"time"

	"github.com/docaxis/docaxis/envelope"
)

// Purpose says what a certificate is for. Each purpose gets the subject,
// key usages, SAN and validity docaxis has always given it (Issue).
type Purpose int

const (
	// PurposeAgency: an agency's signing key. Subject serialNumber and SAN
	// URI urn:docaxis:agency:CODE; digital signature and content
	// commitment; client auth and e-mail protection.
	PurposeAgency Purpose = iota + 1
	// PurposeSystem: a document system's signing key (it signs for the
	// agencies the directory binds to it). Subject serialNumber system:ID,
	// SAN URI urn:docaxis:system:ID; client auth.
	PurposeSystem
	// PurposeBus: the key a bus signs its federation trace entries with.
	// SAN URI urn:docaxis:bus:ID, no extended key usage; ECDSA P-256.
	PurposeBus
	// PurposeAudit: the bus's audit key (checkpoints). SAN URI
	// urn:docaxis:audit, extended key usage id-kp-documentSigning;
	// ECDSA P-256; ends with its CA at the latest.
	PurposeAudit
	// PurposeTLS: a TLS server. DNS and IP SANs (IssueOptions.Hosts),
	// server auth.
	PurposeTLS
	// PurposeTimeStamping: a time-stamping authority (RFC 3161): the
	// extended key usage id-kp-timeStamping alone, marked critical; ends
	// with its CA at the latest.
	PurposeTimeStamping
)

var purposeNames = map[Purpose]string{PurposeAgency: "agency", PurposeSystem: "system", PurposeBus: "bus",
	PurposeAudit: "audit", PurposeTLS: "TLS server", PurposeTimeStamping: "time-stamping"}

func (p Purpose) String() string {
	if n, ok := purposeNames[p]; ok {
		return n
	}
	return fmt.Sprintf("Purpose(%d)", int(p))
}

// SAN URIs and extended key usages that mark what a certificate is for.
const (
	// BusURIPrefix starts the SAN URI that binds a certificate to a bus:
	// urn:docaxis:bus:HN. A bus certificate binds no agency, so it can sign
	// trace entries and nothing an agency signs.
	BusURIPrefix = "urn:docaxis:bus:"
	// AuditURI is the SAN URI of an audit certificate. It is not an agency
	// URI, so an audit key can never sign as an agency.
	AuditURI = "urn:docaxis:audit"
)

var (
	// OIDExtKeyUsageAudit is the extended key usage of an audit
	// certificate: id-kp-documentSigning (RFC 9336), which agency
	// certificates (client auth, e-mail protection) do not carry.
	OIDExtKeyUsageAudit = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 36}
	// OIDExtKeyUsage is the extended key usage extension, and
	// OIDExtKeyUsageTimeStamping id-kp-timeStamping.
	OIDExtKeyUsage             = asn1.ObjectIdentifier{2, 5, 29, 37}
	OIDExtKeyUsageTimeStamping = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}
)

// ErrPurposeKey: the key cannot serve the purpose (bus and audit keys sign
// ES256 only).
var ErrPurposeKey = errors.New("key does not fit the certificate's purpose")

// IssueOptions adjusts Issue.
type IssueOptions struct {
	KeyType   KeyType       // of the key the CA's Issue* methods create
	NotBefore time.Time     // default: now minus an hour of clock skew
	Validity  time.Duration // default: two years
	// Name is the subject's common name. Default: the agency code or system
	// id; "docaxis bus ID", "docaxis audit", "docaxis server",
	// "docaxis time-stamping authority".
	Name string
	// Hosts are the names and IP addresses of a TLS server.
	Hosts []string
}

// Issue certifies pub for purpose p from ca, with the extensions and
// validity the purpose has. subject is what the certificate binds: the
// agency code, the system id or the bus id; audit, TLS and time-stamping
// certificates bind none ("").
func Issue(ca *CA, p Purpose, subject string, pub crypto.PublicKey, o IssueOptions) (*x509.Certificate, error) {
	tmpl, err := template(p, subject, pub, o)
	if err != nil {
		return nil, fmt.Errorf("issue %s certificate: %w", p, err)
	}
	if o.Validity == 0 {
		o.Validity = 2 * 365 * 24 * time.Hour
	}
	if o.NotBefore.IsZero() {
		// An hour back for clock skew, without shortening the validity.
		now := time.Now()
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(o.Validity)
	} else {
		tmpl.NotBefore, tmpl.NotAfter = o.NotBefore, o.NotBefore.Add(o.Validity)
	}
	// The bus's own keys end with their CA: a checkpoint or time-stamp
	// must never claim a time its CA did not cover.
	if (p == PurposeAudit || p == PurposeTimeStamping) && tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	if tmpl.SerialNumber, err = serialNumber(); err != nil {
		return nil, fmt.Errorf("issue %s certificate: %w", p, err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue %s certificate for %q: %w", p, tmpl.Subject.CommonName, err)
	}
	return x509.ParseCertificate(der)
}

// template is the certificate of purpose p without serial and validity.
func template(p Purpose, subject string, pub crypto.PublicKey, o IssueOptions) (*x509.Certificate, error) {
	name := func(def string) pkix.Name {
		if o.Name != "" {
			def = o.Name
		}
		return pkix.Name{CommonName: def, Organization: []string{"docaxis"}}
	}
	uri := func(s string) ([]*url.URL, error) {
		u, err := url.Parse(s)
		if err != nil {
			return nil, err
		}
		return []*url.URL{u}, nil
	}
	var err error
	t := &x509.Certificate{}
	switch p {
	case PurposeAgency, PurposeSystem:
		// The code goes into a URI and names a keystore folder; a code that
		// is not one would make a certificate nobody can match (or, with a
		// control character, no certificate at all).
		if err := envelope.CheckNonStandardCode(subject); err != nil {
			return nil, err
		}
		t.Subject = name(subject)
		t.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment
		if p == PurposeAgency {
			t.Subject.SerialNumber = subject
			t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageEmailProtection}
			t.URIs, err = uri(AgencyURIPrefix + subject)
		} else {
			t.Subject.SerialNumber = "system:" + subject
			t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
			t.URIs, err = uri(SystemURIPrefix + subject)
		}
	case PurposeBus:
		if subject == "" {
			return nil, errors.New("no bus id")
		}
		if err := needP256(pub); err != nil {
			return nil, err
		}
		t.Subject = name("docaxis bus " + subject)
		t.KeyUsage = x509.KeyUsageDigitalSignature
		t.URIs, err = uri(BusURIPrefix + subject)
	case PurposeAudit:
		if err := needP256(pub); err != nil {
			return nil, err
		}
		t.Subject = name("docaxis audit")
		t.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment
		t.UnknownExtKeyUsage = []asn1.ObjectIdentifier{OIDExtKeyUsageAudit}
		t.URIs, err = uri(AuditURI)
	case PurposeTLS:
		t.Subject = name("docaxis server")
		t.KeyUsage = x509.KeyUsageDigitalSignature
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		for _, h := range o.Hosts {
			if ip := net.ParseIP(h); ip != nil {
				t.IPAddresses = append(t.IPAddresses, ip)
			} else {
				t.DNSNames = append(t.DNSNames, h)
			}
		}
	case PurposeTimeStamping:
		// The EKU extension by hand: crypto/x509 never marks it critical,
		// and RFC 3161 (and `openssl ts -verify`) want it critical.
		eku, err := asn1.Marshal([]asn1.ObjectIdentifier{OIDExtKeyUsageTimeStamping})
		if err != nil {
			return nil, err
		}
		t.Subject = name("docaxis time-stamping authority")
		t.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment
		t.ExtraExtensions = []pkix.Extension{{Id: OIDExtKeyUsage, Critical: true, Value: eku}}
	default:
		return nil, fmt.Errorf("unknown purpose %d", int(p))
	}
	return t, err
}

func needP256(pub crypto.PublicKey) error {
	if k, ok := pub.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		return fmt.Errorf("%w: %T, want ECDSA P-256", ErrPurposeKey, pub)
	}
	return nil
}

// serialNumber is a random 127-bit certificate serial.
func serialNumber() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// IssueKey creates a key of type kt and certifies it for purpose p:
// the key and its chain (the certificate, then ca's).
func IssueKey(ca *CA, p Purpose, subject string, kt KeyType, o IssueOptions) (crypto.Signer, []*x509.Certificate, error) {
	key, err := NewKey(kt)
	if err != nil {
		return nil, nil, err
	}
	cert, err := Issue(ca, p, subject, key.Public(), o)
	if err != nil {
		return nil, nil, err
	}
	return key, []*x509.Certificate{cert, ca.Cert}, nil
}
