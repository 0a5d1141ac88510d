package attacks_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/federation"
	"github.com/docaxis/docaxis/broker/httpapi"
	"github.com/docaxis/docaxis/broker/httpapi/vxp"
	"github.com/docaxis/docaxis/broker/operations"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats.go"
)

// Claims on a member bus. A federation VN (national, bound G*), HN (the
// victim bus, bound H14) and DN (bound H41), whose compatibility API lets
// document systems register their own agencies. A document system of DN
// and DN's own operator try to register codes bound to HN or to the
// national: through VXP registerAgency over HTTP with the system's valid
// secret, through an agency import line with DN's operator credentials,
// and straight into DN's directory with the system's NATS credentials.
// Every path is refused, and nothing reaches any directory.

const (
	opsSquatHN   = "000.05.00.H14" // bound to HN
	opsSquatVN   = "000.00.00.G23" // bound to the national
	opsOwnVXP    = "000.05.00.H41" // DN's own: the control of the API path
	opsSquatLine = "000.06.00.H14"
	opsOwnLine   = "000.06.00.H41"
)

type opsArena struct {
	*vxpArena
	vn, hn, dn *bustest.FedBus
	dnAdmin    *broker.Client // DN's operator, as the CLI connects
	sysCreds   string         // NATS credentials of DN's system "evil"
}

func newOpsArena(t *testing.T) *opsArena {
	vn := bustest.StartNational(t, "VN")
	hn := bustest.StartMember(t, "HN", vn)
	dn := bustest.StartMember(t, "DN", vn)
	vn.Bind("VN", "*.*.*.G*")
	vn.Bind("HN", "*.*.*.H14")
	vn.Bind("DN", "*.*.*.H41")
	ctx := ctxT(t)
	admin, err := broker.Connect(ctx, dn.URL(), broker.WithTrust(dn.Trust), broker.WithLogger(bustest.Logger()),
		broker.WithNATSOptions(dn.AdminOptions()...), broker.WithDirectoryByKey())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	// DN's serve: its own client behind the HTTP API, registration on.
	serveClient := dn.Service.Client
	v, err := vxp.New(ctx, vxp.Config{Client: serveClient, Keystore: dn.Keystore, Logger: bustest.Logger(), MaxEdocBytes: 1 << 20, AllowRegister: true})
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := httpapi.OpenTokens(ctx, serveClient.JetStream(), httpapi.TokensConfig{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := httpapi.New(httpapi.Config{Client: serveClient, Auth: tokens, Logger: bustest.Logger(), VXP: v})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	t.Cleanup(srv.Drain)

	sys, err := operations.New(admin, dn.Keystore, operations.WithAuthority(dn.Auth)).
		AddSystem(ctx, operations.SystemRequest{ID: "evil", Name: "QLVB evil"})
	if err != nil {
		t.Fatal(err)
	}
	secret, err := operations.SystemSecret(dn.Keystore, "evil", false)
	if err != nil {
		t.Fatal(err)
	}
	x := &vxpArena{arena: &arena{t: t}, url: ts.URL + "/vxp", api: ts.URL, secrets: map[string]string{"evil": secret}}
	a := &opsArena{vxpArena: x, vn: vn, hn: hn, dn: dn, dnAdmin: admin, sysCreds: sys.Creds}
	// Both of DN's clients know HN's and the national's bindings.
	for _, c := range []*broker.Client{admin, serveClient} {
		eventually(t, "DN learns the bindings", func() error {
			for _, code := range []string{opsSquatHN, opsSquatVN} {
				if err := c.CheckClaim(ctx, code); !errors.Is(err, federation.ErrNotBound) {
					return fmt.Errorf("%s: %v", code, err)
				}
			}
			return nil
		})
	}
	return a
}

// opsAbsent checks that no directory of the federation holds code. It is
// asked once control, registered on DN after the attempts, reached the
// national and HN: an announcement of code would have come before it.
func (a *opsArena) opsAbsent(control string, codes ...string) {
	t := a.t
	ctx := ctxT(t)
	for name, c := range map[string]*broker.Client{"VN": a.vn.Service.Client, "HN": a.hn.Service.Client} {
		eventually(t, control+" reaches "+name, func() error {
			got, err := c.LookupAgency(ctx, control)
			if err != nil || got.Bus != "DN" {
				return fmt.Errorf("%+v %v", got, err)
			}
			return nil
		})
	}
	buses := map[string]*broker.Client{"DN": a.dn.Service.Client, "DN (by key)": a.dnAdmin, "VN": a.vn.Service.Client, "HN": a.hn.Service.Client}
	for name, c := range buses {
		for _, code := range codes {
			got, err := c.LookupAgency(ctx, code)
			switch {
			case errors.Is(err, broker.ErrUnknownAgency):
			case err != nil:
				t.Fatalf("%s: look up %s: %v", name, code, err)
			default:
				t.Fatalf("%s lists %s: %+v", name, code, got)
			}
		}
	}
}

// TestOpsClaimsVXPRegister: a document system of DN, with its valid
// secret, registers codes bound to HN and to the national through VXP
// registerAgency: refused (403, naming the bus the code is bound to).
func TestOpsClaimsVXPRegister(t *testing.T) {
	a := newOpsArena(t)
	for _, tc := range []struct{ code, bus string }{{opsSquatHN, "HN"}, {opsSquatVN, "VN"}} {
		r := a.vxpRequest(http.MethodPost, "registerAgency", "evil", a.secrets["evil"], nil, []byte(`{"code":"`+tc.code+`","name":"mine"}`))
		got, raw := a.vxpDo(r)
		vxpFailed(t, "registerAgency "+tc.code, got, "403")
		if !strings.Contains(string(raw), "bound to bus "+tc.bus) {
			t.Fatalf("registerAgency %s: the refusal does not name bus %s: %s", tc.code, tc.bus, raw)
		}
	}
	// The same call for DN's own code works: the refusals above are the
	// bindings', not the route's.
	r := a.vxpRequest(http.MethodPost, "registerAgency", "evil", a.secrets["evil"], nil, []byte(`{"code":"`+opsOwnVXP+`","name":"Sở"}`))
	if got, raw := a.vxpDo(r); got["status"] == "FAIL" {
		t.Fatalf("registerAgency of DN's own code: %s", raw)
	}
	a.opsAbsent(opsOwnVXP, opsSquatHN, opsSquatVN)
}

// TestOpsClaimsImportLine: DN's operator imports a line for a code bound
// to HN (beside one of its own), with a client made with no option: the
// lines are refused with their numbers, the other applied.
func TestOpsClaimsImportLine(t *testing.T) {
	a := newOpsArena(t)
	ctx := ctxT(t)
	res, err := a.dnAdmin.ImportAgencies(ctx, []broker.ImportLine{
		{Line: 1, Agency: broker.Agency{Code: opsSquatLine, Name: "squatter"}},
		{Line: 2, Agency: broker.Agency{Code: opsSquatVN, Name: "squatter", System: "evil"}},
		{Line: 3, Agency: broker.Agency{Code: opsOwnLine, Name: "Sở"}},
	}, broker.ImportOptions{Bind: operations.New(a.dnAdmin, a.dn.Keystore).SignBinding}) // as `docaxis agency import` does
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 1 || len(res.Errors) != 2 {
		t.Fatalf("import: %+v %v", res, res.Errors)
	}
	for i, bus := range []string{"HN", "VN"} {
		if e := res.Errors[i]; e.Line != i+1 || !errors.Is(e, record.ErrNotBound) || !strings.Contains(e.Error(), "bound to bus "+bus) {
			t.Fatalf("line %d: %v", i+1, e)
		}
	}
	// A directory-only entry stays on DN: the import's control is a code
	// with a system, which DN announces.
	r := a.vxpRequest(http.MethodPost, "registerAgency", "evil", a.secrets["evil"], nil, []byte(`{"code":"`+opsOwnVXP+`","name":"Sở"}`))
	if got, raw := a.vxpDo(r); got["status"] == "FAIL" {
		t.Fatalf("registerAgency of DN's own code: %s", raw)
	}
	a.opsAbsent(opsOwnVXP, opsSquatLine, opsSquatVN)
}

// TestOpsClaimsSystemCredsDirectory: the system's NATS credentials write
// the directory entry themselves, past every check: the server refuses.
func TestOpsClaimsSystemCredsDirectory(t *testing.T) {
	a := newOpsArena(t)
	var mu sync.Mutex
	var denied []string
	nc, err := nats.Connect(a.dn.URL(), nats.UserCredentials(a.sysCreds), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		mu.Lock()
		denied = append(denied, err.Error())
		mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	subject := record.KVSubject(record.DirectoryBucket, record.DirectoryKey(opsSquatHN))
	if err := nc.Publish(subject, []byte(`{"code":"`+opsSquatHN+`","name":"mine","system":"evil","bus":"DN"}`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the server refuses the write", func() error {
		mu.Lock()
		defer mu.Unlock()
		for _, d := range denied {
			if strings.Contains(strings.ToLower(d), "permissions violation") && strings.Contains(d, subject) {
				return nil
			}
		}
		return fmt.Errorf("not refused: %v", denied)
	})
	r := a.vxpRequest(http.MethodPost, "registerAgency", "evil", a.secrets["evil"], nil, []byte(`{"code":"`+opsOwnVXP+`","name":"Sở"}`))
	if got, raw := a.vxpDo(r); got["status"] == "FAIL" {
		t.Fatalf("registerAgency of DN's own code: %s", raw)
	}
	a.opsAbsent(opsOwnVXP, opsSquatHN)
}
