// Package signingtest helps tests of the packages that sign and issue
// certificates: certificate profiles and golden files.
package signingtest

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Profile describes what a certificate's purpose decides, one line per
// field: subject, key and extended key usages, critical and other
// extensions (by OID), SANs, CA flags, key algorithm, and its validity in
// minutes relative to start (when the caller asked for it). Serial numbers,
// keys and signatures are left out: they differ on every issue.
func Profile(c *x509.Certificate, start time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "subject: %s\n", c.Subject)
	fmt.Fprintf(&b, "issuer: %s\n", c.Issuer)
	fmt.Fprintf(&b, "key usage: %b\n", c.KeyUsage)
	fmt.Fprintf(&b, "ext key usage: %v unknown %v\n", c.ExtKeyUsage, c.UnknownExtKeyUsage)
	var exts []string
	for _, e := range c.Extensions {
		exts = append(exts, fmt.Sprintf("%s critical=%t", e.Id, e.Critical))
	}
	slices.Sort(exts)
	fmt.Fprintf(&b, "extensions: %s\n", strings.Join(exts, ", "))
	fmt.Fprintf(&b, "uris: %v dns: %v ips: %v emails: %v\n", c.URIs, c.DNSNames, c.IPAddresses, c.EmailAddresses)
	fmt.Fprintf(&b, "ca: %t basic constraints: %t max path %d\n", c.IsCA, c.BasicConstraintsValid, c.MaxPathLen)
	fmt.Fprintf(&b, "key: %s signature: %s\n", c.PublicKeyAlgorithm, c.SignatureAlgorithm)
	fmt.Fprintf(&b, "not before: %+d min, not after: %+d min\n", minutes(c.NotBefore.Sub(start)), minutes(c.NotAfter.Sub(start)))
	return b.String()
}

// minutes rounds d to whole minutes: issuing takes well under one.
func minutes(d time.Duration) int64 { return int64(d.Round(time.Minute) / time.Minute) }

// Golden compares got with testdata/golden/name, rewriting the file
// instead when update is set.
func Golden(t testing.TB, update bool, name, got string) {
	t.Helper()
	if update {
		WriteGolden(t, name, []byte(got))
	}
	if want := ReadGolden(t, name); got != string(want) {
		t.Errorf("%s differs:\n got:\n%s\nwant:\n%s", name, got, want)
	}
}

// WriteGolden writes testdata/golden/name.
func WriteGolden(t testing.TB, name string, data []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// ReadGolden reads testdata/golden/name.
func ReadGolden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "golden", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
