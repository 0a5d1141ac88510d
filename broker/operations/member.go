package operations

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/docaxis/docaxis/broker/federation"
)

// MemberRequest is a bus to admit to the federation.
type MemberRequest struct {
	// ID is the member's bus id.
	ID string
	// CA is the member bus's root CA, as its operator handed it over.
	CA *x509.Certificate
	// Codes are the code patterns bound to it (at least one).
	Codes federation.Binding
	// Creds is where its leaf credentials are written.
	Creds string
}

// Admission is what AdmitMember did.
type Admission struct {
	National string
	Member   string
	// NationalCA is this bus's own CA (nil when the home holds none).
	NationalCA *x509.Certificate
	Codes      []string
	Creds      string
}

// AdmitMember admits a member bus to the federation of the national bus
// the operator's client is connected to (docaxis federation member add):
// its link account and leaf credentials first, then its listing in the
// federation directory with its CA and code binding. Written in that
// order, the national never sees a listed member without a link account;
// a refused listing (an overlapping binding, a CA withdrawn before)
// revokes the credentials just issued.
func (o *Operator) AdmitMember(ctx context.Context, req MemberRequest) (*Admission, error) {
	member := req.ID
	if err := federation.CheckBusID(member); err != nil {
		return nil, err
	}
	national := o.c.Bus()
	if national == "" {
		return nil, errors.New("this bus has no bus id: run it with docaxis serve --bus-id ID --leaf-listen HOST:PORT")
	}
	if member == national {
		return nil, fmt.Errorf("bus %s is the national bus itself", member)
	}
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	st, err := federation.QueryStatus(qctx, o.c.Conn())
	cancel()
	switch {
	case err != nil:
		// Nothing is admitted on a bus that may be a member.
		return nil, fmt.Errorf("admit bus %s: cannot tell that bus %s is the national bus: %w", member, national, err)
	case st.Role != "national":
		return nil, fmt.Errorf("bus %s is a member of %s: admit members on the national bus", national, st.National)
	}
	own, ownErr := o.ks.CACert()
	if ownErr == nil && own.Equal(req.CA) {
		return nil, errors.New("--ca is this bus's own CA: give the member bus's CA")
	}
	if o.auth == nil {
		return nil, fmt.Errorf("admit bus %s: no NATS authority in the home to issue its link credentials", member)
	}
	if len(req.Codes) == 0 {
		return nil, fmt.Errorf("admit bus %s: no code patterns bound to it", member)
	}
	undo, err := o.auth.AdmitLeaf(national, member, req.Creds)
	if err != nil {
		return nil, err
	}
	if err := federation.RegisterBus(ctx, o.c, member, req.CA, false, federation.WithCodes(req.Codes.Strings()...)); err != nil {
		if uerr := undo(); uerr != nil {
			return nil, errors.Join(err, uerr)
		}
		return nil, err
	}
	ad := &Admission{National: national, Member: member, Codes: req.Codes.Strings(), Creds: req.Creds}
	if ownErr == nil {
		ad.NationalCA = own
	}
	return ad, nil
}
