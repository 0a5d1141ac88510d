package httpapi_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/httpapi"
	"github.com/docaxis/docaxis/signing"
)

// An open event stream ends once its request would be refused: the token
// revoked, or the document system whose token it is no longer serving the
// agency named with ?as=.
func TestEventsEndWhenTheTokenNoLongerGivesTheAgency(t *testing.T) {
	defer httpapi.SetEventsPing(20 * time.Millisecond)()
	const moved = "000.00.00.H97"
	for _, c := range []struct {
		name  string
		open  func(e *env) (token, path string)
		leave func(e *env, token string)
	}{
		{"token revoked",
			func(e *env) (string, string) {
				tok, _, err := e.tokens.Create(ctxT(t), ngheAn)
				if err != nil {
					t.Fatal(err)
				}
				return tok, "/v1/events"
			},
			func(e *env, tok string) {
				if err := e.tokens.Revoke(ctxT(t), ngheAn, tok); err != nil {
					t.Fatal(err)
				}
			}},
		{"agency moved off the system",
			func(e *env) (string, string) {
				servedBy(t, e, "dms", moved)
				tok, _, err := e.tokens.Create(ctxT(t), broker.SystemActor("dms"))
				if err != nil {
					t.Fatal(err)
				}
				return tok, "/v1/events?as=" + moved
			},
			func(e *env, _ string) {
				ctx := ctxT(t)
				a, err := e.bus.Service.Client.LookupAgency(ctx, moved)
				if err != nil {
					t.Fatal(err)
				}
				raw, err := e.bus.CA.SignBinding(signing.Binding{Agency: moved})
				if err != nil {
					t.Fatal(err)
				}
				a.System, a.Bindings = "", append(a.Bindings, raw)
				if err := e.bus.Service.Client.RegisterAgency(ctx, *a); err != nil {
					t.Fatal(err)
				}
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			tok, path := c.open(e)
			ctx, cancel := context.WithTimeout(ctxT(t), 20*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", e.ts.URL+path, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("open: %d", res.StatusCode)
			}
			c.leave(e, tok)
			sc := newSSEReader(res.Body)
			for {
				_, _, err := sc.next()
				if err == nil {
					continue
				}
				if ctx.Err() != nil {
					t.Fatalf("the stream outlived the refusal: %v", err)
				}
				return // ended by the server
			}
		})
	}
}

// servedBy registers document system id serving a new agency code.
func servedBy(t *testing.T, e *env, id, code string) {
	t.Helper()
	ctx := ctxT(t)
	sid, err := e.bus.CA.IssueSystem(id, id, signing.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.bus.Service.Client.RegisterSystem(ctx, broker.System{ID: id, Name: id, Certificate: string(signing.EncodeCerts(sid.Chain...))}); err != nil {
		t.Fatal(err)
	}
	raw, err := e.bus.CA.SignBinding(signing.Binding{Agency: code, System: id})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.bus.Service.Client.RegisterAgency(ctx, broker.Agency{Code: code, Name: code, System: id, Bindings: []string{raw}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the server sees "+code+" served by "+id, func() bool {
		a, err := e.client.LookupAgency(ctx, code)
		return err == nil && a.System == id
	})
}

// A document system names the agency it acts for by its code: the key
// form of the code (dots as underscores) finds the same directory entry,
// and must not pass as another name of the agency (a request acting as
// "000_00_00_H96" under a rate bucket of its own).
func TestSystemActsOnlyForAnAgencyByItsCode(t *testing.T) {
	e := newEnv(t)
	const served = "000.00.00.H96"
	servedBy(t, e, "dms", served)
	tok, _, err := e.tokens.Create(ctxT(t), broker.SystemActor("dms"))
	if err != nil {
		t.Fatal(err)
	}
	e.tok["dms"] = tok
	for _, c := range []struct {
		as   string
		want int
	}{
		{served, http.StatusOK},
		{"000_00_00_H96", http.StatusForbidden},
		{" " + served, http.StatusOK}, // spaces around a code are trimmed
	} {
		if res := e.do("GET", "/v1/me?as="+url.QueryEscape(c.as), "dms", nil); res.StatusCode != c.want {
			t.Errorf("as %q: %d %s, want %d", c.as, res.StatusCode, res.body, c.want)
		}
	}
}
