package broker

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go/jetstream"
)

// Revocations in the directory. Each CA's CRL is kept under the CA's own
// key, crl.<signing.KeyID(CA)>: buses of a federation never overwrite each
// other's, and a CRL is applied only when it is signed by the CA the key
// names. A CA withdrawn from a federation (its bus left) is marked under
// crl.<key id>.withdrawn: chains through it verify only before that time.
const (
	// CRLPrefix starts the directory keys of CRLs and CA withdrawals.
	CRLPrefix = "crl."
	// WithdrawnSuffix ends the key of a CA withdrawal.
	WithdrawnSuffix = ".withdrawn"
	// crlValidity is the nextUpdate of the CRLs RevokeAgency issues.
	crlValidity = 30 * 24 * time.Hour
)

// CRLKey is the directory key of the CRL of ca.
func CRLKey(ca *x509.Certificate) string { return CRLPrefix + signing.KeyID(ca) }

// WithdrawnKey is the directory key marking ca withdrawn.
func WithdrawnKey(ca *x509.Certificate) string { return CRLKey(ca) + WithdrawnSuffix }

// Withdrawal is the value under WithdrawnKey.
type Withdrawal struct {
	Bus string    `json:"bus,omitempty"`
	At  time.Time `json:"at"`
}

// applyRevocationEntry applies a directory entry under CRLPrefix to trust:
// a CRL (kept until its CA is trusted, if need be) or a CA withdrawal.
func applyRevocationEntry(trust *signing.Trust, key string, value []byte) error {
	rest := strings.TrimPrefix(key, CRLPrefix)
	if kid, ok := strings.CutSuffix(rest, WithdrawnSuffix); ok {
		var w Withdrawal
		if err := json.Unmarshal(value, &w); err != nil || w.At.IsZero() {
			return fmt.Errorf("CA withdrawal %s: bad entry (%v)", key, err)
		}
		trust.WithdrawCA(kid, w.At)
		return nil
	}
	return trust.KeepCRL(rest, value)
}

func (d *directory) applyRevocation(e jetstream.KeyValueEntry, log *slog.Logger) {
	if e.Operation() != jetstream.KeyValuePut {
		return // a revocation is never taken back by deleting its entry
	}
	if err := applyRevocationEntry(d.trust, e.Key(), e.Value()); err != nil {
		log.Warn("directory: revocation entry not applied", "key", e.Key(), "err", err)
	}
}

// PublishCRL publishes a certificate revocation list signed by a trusted
// root, under that root's key (CRLKey); every client applies it to that
// root's certificates only: signatures made after a revocation time are
// refused, earlier ones still verify. A CRL older (by number) than the
// one in force is refused (signing.ErrStaleCRL).
func (c *Client) PublishCRL(ctx context.Context, der []byte) error {
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return fmt.Errorf("publish CRL: %w", err)
	}
	issuer, err := c.trust.CRLIssuer(crl)
	if err != nil {
		return fmt.Errorf("publish CRL: %w", err)
	}
	if _, err := c.trust.ApplyCRLFor(signing.KeyID(issuer), der); err != nil {
		return fmt.Errorf("publish CRL: %w", err)
	}
	if _, err := c.dir.kv.Put(ctx, CRLKey(issuer), der); err != nil {
		return fmt.Errorf("publish CRL of %q: %w", issuer.Subject.CommonName, err)
	}
	return nil
}

// RevokeAgency revokes the current certificate of agency code from at: a
// new CRL of the development CA in ks listing it (with every earlier
// revocation), published in the directory. It is what `docaxis agency
// revoke` does. A bus revokes only what it serves: in a federation an
// agency served by another bus is refused (ErrServedElsewhere), and so is
// a certificate its CA did not issue (signing.ErrNotIssuedHere).
func (c *Client) RevokeAgency(ctx context.Context, ks *signing.Keystore, code string, at time.Time) (*x509.Certificate, error) {
	a, err := c.readAgency(ctx, code)
	if err != nil {
		return nil, fmt.Errorf("revoke %s: %w", code, err)
	}
	if bus := c.Bus(); bus != "" && a.Bus != "" && a.Bus != bus {
		return nil, fmt.Errorf("revoke %s: %w: served by bus %s, this is bus %s; only bus %s can revoke its agencies", code, ErrServedElsewhere, a.Bus, bus, a.Bus)
	}
	certs, err := signing.ParseCerts([]byte(a.Certificate))
	if err != nil {
		return nil, fmt.Errorf("revoke %s: %w", code, err)
	}
	der, err := ks.RevokeCertificate(certs[0], code, at, crlValidity)
	if err != nil {
		return nil, fmt.Errorf("revoke %s: %w", code, err)
	}
	if err := c.PublishCRL(ctx, der); err != nil {
		return nil, fmt.Errorf("revoke %s: recorded in the keystore, but %w (run it again to publish)", code, err)
	}
	return certs[0], nil
}

// MigrateCRLs moves CRLs kept under keys of an older layout (the hash of
// the issuer's name, which every development CA shared) to the key of the
// CA that signed them. `docaxis serve` runs it at start; it returns how
// many it moved. A CRL no trusted root signed is left where it is. Moves
// are idempotent, so it asks again through a failover.
func (c *Client) MigrateCRLs(ctx context.Context) (int, error) {
	return retry(ctx, c, c.migrateCRLs)
}

func (c *Client) migrateCRLs(ctx context.Context) (int, error) {
	kv, ok := c.dir.kv.(jetstream.KeyValue)
	if !ok {
		return 0, fmt.Errorf("migrate CRLs: %w: needs the bus's own credentials", ErrPermission)
	}
	lister, err := kv.ListKeysFiltered(ctx, CRLPrefix+"*")
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("migrate CRLs: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	moved := 0
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return moved, fmt.Errorf("migrate CRL %s: %w", k, err)
		}
		crl, err := x509.ParseRevocationList(e.Value())
		if err != nil {
			continue
		}
		issuer, err := c.trust.CRLIssuer(crl)
		if err != nil || CRLKey(issuer) == k {
			continue
		}
		// Keep the newer of the two when the new key already holds one.
		if err := c.trust.KeepCRL(signing.KeyID(issuer), e.Value()); err == nil {
			if _, err := kv.Put(ctx, CRLKey(issuer), e.Value()); err != nil {
				return moved, fmt.Errorf("migrate CRL %s: %w", k, err)
			}
		} else if !errors.Is(err, signing.ErrStaleCRL) {
			continue
		}
		if err := kv.Delete(ctx, k); err != nil {
			return moved, fmt.Errorf("migrate CRL %s: %w", k, err)
		}
		moved++
	}
	return moved, nil
}
