package signing_test

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
)

// Agency codes used throughout the tests.
const (
	codeA = "000.00.00.G22"
	codeB = "000.00.00.H41"
	codeC = "000.00.00.H14"
)

var keyTypes = []signing.KeyType{signing.KeyECDSA, signing.KeyEd25519, signing.KeyRSA}

var (
	caOnce sync.Once
	testCA *signing.CA
	caErr  error
)

// sharedCA returns one CA per test binary; creating one is cheap but the
// identities it issues (RSA) are not, so tests that only need "a trusted
// issuer" share it.
func sharedCA(tb testing.TB) *signing.CA {
	tb.Helper()
	// Valid from long ago so that tests can issue certificates that were
	// valid (and expired) in the past under it.
	caOnce.Do(func() { testCA, caErr = caFrom("signing test CA", time.Now().Add(-30*24*time.Hour), 60*24*time.Hour) })
	if caErr != nil {
		tb.Fatal(caErr)
	}
	return testCA
}

var (
	idMu  sync.Mutex
	idMap = map[string]*signing.Identity{}
)

// identity returns an identity of agency with key type kt issued by the
// shared CA, generating it once.
func identity(tb testing.TB, agency string, kt signing.KeyType) *signing.Identity {
	tb.Helper()
	idMu.Lock()
	defer idMu.Unlock()
	k := agency + "/" + string(kt)
	if id, ok := idMap[k]; ok {
		return id
	}
	id, err := sharedCA(tb).Issue(agency, "Agency "+agency, signing.IssueOptions{KeyType: kt})
	if err != nil {
		tb.Fatalf("issue %s: %v", k, err)
	}
	idMap[k] = id
	return id
}

// document returns a valid envelope from -> to.
func document(from string, to ...string) *envelope.Envelope {
	return envelope.New(from, to, "Về việc thử nghiệm")
}

// seal signs e with id's key and chain directly, bypassing Identity.Seal's
// own date check so that tests can make envelopes a verifier must refuse.
func seal(tb testing.TB, id *signing.Identity, e *envelope.Envelope) []byte {
	tb.Helper()
	raw, err := envelope.Seal(e, id.Key, id.Chain)
	if err != nil {
		tb.Fatalf("seal: %v", err)
	}
	return raw
}

// caFrom makes a CA valid from notBefore for validity; NewCA always starts
// now.
func caFrom(name string, notBefore time.Time, validity time.Duration) (*signing.CA, error) {
	key, err := signing.NewKey(signing.KeyECDSA)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &signing.CA{Cert: cert, Key: key}, nil
}
