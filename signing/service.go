package signing

import (
	"crypto/x509"
	"encoding/asn1"
	"net/url"
	"slices"
	"strings"
)

// BusOf returns the bus a certificate binds in its SAN URI
// (BusURIPrefix), or "".
func BusOf(c *x509.Certificate) string {
	for _, u := range c.URIs {
		if s := u.String(); strings.HasPrefix(s, BusURIPrefix) {
			return strings.TrimPrefix(s, BusURIPrefix)
		}
	}
	return ""
}

// ServiceOf says which of a bus's own services a certificate is for (CA,
// audit, time-stamping, TLS server, document system, bus), or "" for any
// other. Such a certificate never signs as an agency: the directory does
// not register it as one and offline evidence never binds it to one.
func ServiceOf(c *x509.Certificate) string {
	switch {
	case c.IsCA:
		return "CA"
	// Either audit mark alone is enough (audit.IsAuditCertificate wants both).
	case slices.ContainsFunc(c.URIs, func(u *url.URL) bool { return u.String() == AuditURI }),
		slices.ContainsFunc(c.UnknownExtKeyUsage, func(o asn1.ObjectIdentifier) bool { return o.Equal(OIDExtKeyUsageAudit) }):
		return "audit"
	case slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageTimeStamping):
		return "time-stamping"
	case slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}):
		return "TLS server"
	case SystemOf(c) != "":
		return "document system"
	case BusOf(c) != "":
		return "bus"
	}
	return ""
}
