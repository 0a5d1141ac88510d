package operations

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/signing"
)

// AgencyRequest is an agency to register with a key of its own.
type AgencyRequest struct {
	// Agency is the directory entry: Code and Name, and optionally
	// NonStandard, Parent, Email, OldCode. Its Certificate, System and
	// Bindings are set here.
	Agency broker.Agency
	// KeyType of a key issued for it (signing.KeyType; "" the default).
	KeyType string
	// Import is an existing key and chain to use instead of the one the
	// home holds or would issue.
	Import *signing.Identity
}

// AgencyResult is what AddAgency registered.
type AgencyResult struct {
	Agency   broker.Agency
	Identity *signing.Identity
	// Creds is the path of its NATS credentials ("" on a bus without
	// authentication).
	Creds string
}

// AddAgency registers an agency with a key of its own (docaxis agency
// add): the key the home holds for it, else the one imported, else one
// issued by the home's CA. An agency a system served leaves it with a
// signed end of the binding. The key is saved in the home only once the
// bus took the registration: a code the bus may not serve (another bus's,
// in a federation) leaves no key behind. Then its NATS credentials are
// issued.
func (o *Operator) AddAgency(ctx context.Context, req AgencyRequest) (*AgencyResult, error) {
	a := req.Agency
	code := a.Code
	id, fresh, err := o.agencyIdentity(req)
	if err != nil {
		return nil, err
	}
	if signing.AgencyOf(id.Certificate()) == "" {
		o.c.Trust().Bind(code, id.Certificate())
	}
	a.Certificate, a.System, a.Bindings = string(signing.EncodeCerts(id.Chain...)), "", nil
	if prev, err := o.c.LookupAgency(ctx, code); err == nil && prev.System != "" {
		// Leaving its system for a mailbox of its own: the end of the
		// binding is signed too.
		raw, err := o.SignBinding(signing.Binding{Agency: code})
		if err != nil {
			return nil, err
		}
		a.Bindings = append(prev.Bindings, raw)
	}
	if err := o.c.RegisterAgency(ctx, a); err != nil {
		return nil, err
	}
	if fresh {
		if err := o.ks.Save(id); err != nil {
			return nil, fmt.Errorf("registered %s, but saving its key in the home failed (run the command again to issue another): %w", code, err)
		}
	}
	res := &AgencyResult{Agency: a, Identity: id}
	if o.auth != nil {
		res.Creds = AgencyCredsPath(o.ks.Dir, code)
		if err := o.auth.AgencyCreds(code, res.Creds); err != nil {
			return nil, fmt.Errorf("registered %s, but issuing its NATS credentials failed: %w", code, err)
		}
	}
	return res, nil
}

// agencyIdentity returns the identity to register: the imported one, the
// home's, or a new one (fresh: not saved yet).
func (o *Operator) agencyIdentity(req AgencyRequest) (id *signing.Identity, fresh bool, err error) {
	code := req.Agency.Code
	if req.Import != nil {
		if req.Import.Agency != code {
			return nil, false, fmt.Errorf("import the key of %s: the identity is %s's", code, req.Import.Agency)
		}
		return req.Import, true, nil
	}
	if id, err := o.ks.Identity(code); err == nil {
		return id, false, nil
	} else if !errors.Is(err, signing.ErrNoIdentity) {
		return nil, false, err
	}
	ca, err := o.ks.CA()
	if err != nil {
		return nil, false, err
	}
	id, err = ca.Issue(code, req.Agency.Name, signing.IssueOptions{KeyType: signing.KeyType(req.KeyType)})
	if err != nil {
		return nil, false, err
	}
	return id, true, nil
}

// ServedAgency is an agency to register as served by a document system.
type ServedAgency struct {
	// Agency is the directory entry, System set; Bindings are set here.
	// An empty Name or Parent keeps the registered one.
	Agency broker.Agency
	// Stay refuses (ErrOtherSystem) an agency registered and not served by
	// Agency.System: a system registers its own agencies, only the
	// operator moves one.
	Stay bool
}

// AddServedAgency registers, or updates, an agency served by a system
// (docaxis agency add --system; the compatibility API's registerAgency, a
// system registering its own): no key of its own, a binding to the system
// signed by the home's CA when it comes to the system.
func (o *Operator) AddServedAgency(ctx context.Context, req ServedAgency) (*broker.Agency, error) {
	if req.Agency.System == "" {
		return nil, fmt.Errorf("register %s: %w: no system serves it", req.Agency.Code, broker.ErrInvalidEntry)
	}
	// Made from the entry the bucket holds and written only over it: a
	// binding added meanwhile (another process, a move) is never dropped.
	var made broker.Agency
	err := o.c.UpdateAgency(ctx, req.Agency.Code, func(prev *broker.Agency) (broker.Agency, error) {
		var err error
		made, err = o.servedEntry(req, prev)
		return made, err
	})
	if err != nil {
		return nil, err
	}
	return &made, nil
}

// servedEntry makes req's entry from prev, the one registered now (nil:
// none).
func (o *Operator) servedEntry(req ServedAgency, prev *broker.Agency) (broker.Agency, error) {
	a := req.Agency
	if req.Stay && prev != nil && prev.System != a.System {
		return a, fmt.Errorf("%w: agency %s is registered and not served by system %s", ErrOtherSystem, a.Code, a.System)
	}
	a.Bindings = nil
	if prev != nil {
		a.Bindings = slices.Clone(prev.Bindings)
		if a.Name == "" {
			a.Name = prev.Name
		}
		if a.Parent == "" {
			a.Parent = prev.Parent
		}
	}
	if prev == nil || prev.System != a.System {
		raw, err := o.SignBinding(signing.Binding{Agency: a.Code, System: a.System})
		if err != nil {
			return a, err
		}
		a.Bindings = append(a.Bindings, raw)
	}
	return a, nil
}

// SignBinding signs b with the home's CA: the binding of an agency to a
// system (or its end) that receivers check a system's signature against.
func (o *Operator) SignBinding(b signing.Binding) (string, error) {
	ca, err := o.ks.CA()
	if err != nil {
		return "", fmt.Errorf("sign the binding of %s to system %q: %w", b.Agency, b.System, err)
	}
	return ca.SignBinding(b)
}

// RevokeAgency revokes agency code's current certificate from at (docaxis
// agency revoke): a CRL signed by the home's CA, published in the
// directory. It returns the certificate revoked.
func (o *Operator) RevokeAgency(ctx context.Context, code string, at time.Time) (*x509.Certificate, error) {
	return o.c.RevokeAgency(ctx, o.ks, code, at)
}
