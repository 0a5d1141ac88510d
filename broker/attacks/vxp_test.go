package attacks_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/httpapi"
	"github.com/docaxis/docaxis/broker/httpapi/vxp"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
)

// Attacks on the VXP compatibility API (/vxp): a document system "evil"
// with its own valid secret and agency tries to act for, read or
// acknowledge what belongs to system "victim", and outsiders try without
// a valid signature.

const (
	vxpVictimAgency = "000.00.00.H15" // served by system victim
	vxpEvilAgency   = "000.00.00.H98" // served by system evil
)

type vxpArena struct {
	*arena
	url     string
	api     string
	secrets map[string]string
}

func newVXPArena(t *testing.T) *vxpArena {
	a := newArena(t)
	ctx := ctxT(t)
	v, err := vxp.New(ctx, vxp.Config{Client: a.admin, Keystore: a.bus.Keystore, Logger: bustest.Logger(), MaxEdocBytes: 1 << 20, AllowRegister: true})
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := httpapi.OpenTokens(ctx, a.admin.JetStream(), httpapi.TokensConfig{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := httpapi.New(httpapi.Config{Client: a.admin, Auth: tokens, Logger: bustest.Logger(), VXP: v})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	t.Cleanup(srv.Drain)
	x := &vxpArena{arena: a, url: ts.URL + "/vxp", api: ts.URL, secrets: map[string]string{}}
	x.vxpSystem("victim", vxpVictimAgency)
	x.vxpSystem("evil", vxpEvilAgency)
	return x
}

// vxpSystem registers a system serving code, with a secret.
func (x *vxpArena) vxpSystem(id, code string) {
	t := x.t
	ctx := ctxT(t)
	sid, err := x.bus.CA.IssueSystem(id, id, signing.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.bus.Keystore.SaveSystem(sid); err != nil {
		t.Fatal(err)
	}
	if err := x.admin.RegisterSystem(ctx, broker.System{ID: id, Name: id, Certificate: string(signing.EncodeCerts(sid.Chain...))}); err != nil {
		t.Fatal(err)
	}
	raw, err := x.bus.CA.SignBinding(signing.Binding{Agency: code, System: id})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.admin.RegisterAgency(ctx, broker.Agency{Code: code, Name: code, System: id, Bindings: []string{raw}}); err != nil {
		t.Fatal(err)
	}
	x.vxpRotate(id)
}

func (x *vxpArena) vxpRotate(id string) string {
	buf := make([]byte, 32)
	_, _ = rand.Read(buf)
	s := hex.EncodeToString(buf)
	p := vxp.SecretPath(x.bus.Keystore, id)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		x.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s+"\n"), 0o600); err != nil {
		x.t.Fatal(err)
	}
	x.secrets[id] = s
	return s
}

// vxpRequest signs params for system with secret as the SDK does.
func (x *vxpArena) vxpRequest(method, op, system, secret string, params map[string]string, body []byte) *http.Request {
	x.t.Helper()
	req, err := http.NewRequest(method, x.url+"/"+op, bytes.NewReader(body))
	if err != nil {
		x.t.Fatal(err)
	}
	all := map[string]string{"systemid": system, "timestamp": "04122026T101717+0981", "Content-Type": "application/json"}
	for k, v := range params {
		all[k] = v
	}
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sign strings.Builder
	sign.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			sign.WriteByte(',')
		}
		kb, _ := json.Marshal("XroadVnpt-" + k)
		vb, _ := json.Marshal(all[k])
		sign.Write(kb)
		sign.WriteByte(':')
		sign.Write(vb)
		req.Header["XroadVnpt-"+k] = []string{all[k]}
	}
	sign.WriteByte('}')
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(sign.String()))
	req.Header["XroadVnpt-sign-header"] = []string{sign.String()}
	req.Header["XroadVnpt-hash-header"] = []string{hex.EncodeToString(m.Sum(nil))}
	return req
}

func (x *vxpArena) vxpDo(req *http.Request) (map[string]any, []byte) {
	x.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		x.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out, b
}

func (x *vxpArena) vxpCall(op, system string, params map[string]string) map[string]any {
	out, _ := x.vxpDo(x.vxpRequest(http.MethodPost, op, system, x.secrets[system], params, []byte("{}")))
	return out
}

// vxpEdoc is a minimal edXML document from -> to.
func vxpEdoc(from, to string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>
<edXML:edXMLEnvelope xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016"><edXML:edXMLHeader><edXML:MessageHeader>
<edXML:From><edXML:OrganId>` + from + `</edXML:OrganId><edXML:OrganName>A</edXML:OrganName></edXML:From>
<edXML:To><edXML:OrganId>` + to + `</edXML:OrganId><edXML:OrganName>B</edXML:OrganName></edXML:To>
<edXML:Code><edXML:CodeNumber>1</edXML:CodeNumber><edXML:CodeNotation>TT</edXML:CodeNotation></edXML:Code>
<edXML:PromulgationInfo><edXML:Place>HN</edXML:Place><edXML:PromulgationDate>2026/12/04</edXML:PromulgationDate></edXML:PromulgationInfo>
<edXML:DocumentType><edXML:Type>1</edXML:Type><edXML:TypeName>Công văn</edXML:TypeName></edXML:DocumentType>
<edXML:Subject>Thử tấn công ` + envelope.NewID() + `</edXML:Subject>
</edXML:MessageHeader></edXML:edXMLHeader><edXML:edXMLBody><edXML:edXMLManifest/></edXML:edXMLBody></edXML:edXMLEnvelope>`)
}

// vxpSend signs a sendEdoc of file for system (with its from) as the SDK does.
func (x *vxpArena) vxpSend(system, secret, from string, file []byte) *http.Request {
	sum := sha256.Sum256(file)
	var lossy strings.Builder
	for _, c := range sum {
		lossy.WriteString(strconv.FormatUint(uint64(c), 16))
	}
	return x.vxpRequest(http.MethodPost, "sendEdoc", system, secret,
		map[string]string{"from": from, "servicetype": "eDoc", "messagetype": "edoc", "hash-file": lossy.String(), "Content-Type": "application/octet-stream"},
		append(append([]byte{}, file...), '\r', '\n'))
}

func vxpFailed(t *testing.T, what string, a map[string]any, code string) {
	t.Helper()
	if a["status"] != "FAIL" || fmt.Sprint(a["ErrorCode"]) != code {
		t.Fatalf("%s: want FAIL %s, got %v", what, code, a)
	}
}

func (x *vxpArena) sentBy(code string) int {
	list, err := x.admin.Sent(ctxT(x.t), code)
	if err != nil {
		x.t.Fatal(err)
	}
	return len(list)
}

// Signatures: wrong, unknown system, rotated, removed; an agency's API
// token is no way in either.
func TestVXPSignatures(t *testing.T) {
	x := newVXPArena(t)
	file := vxpEdoc(vxpEvilAgency, victimRecipient)
	old := x.secrets["evil"]
	cases := []struct {
		name string
		req  func() *http.Request
	}{
		{"victim's system with evil's secret", func() *http.Request {
			return x.vxpSend("victim", old, vxpVictimAgency, vxpEdoc(vxpVictimAgency, victimRecipient))
		}},
		{"unknown system", func() *http.Request { return x.vxpSend("sys.nobody", old, vxpEvilAgency, file) }},
		{"no signature, a bearer token", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, x.url+"/getReceivedEdocList", nil)
			r.Header.Set("Authorization", "Bearer "+x.tok[attacker])
			return r
		}},
		{"signature of another header", func() *http.Request {
			r := x.vxpSend("evil", old, vxpEvilAgency, file)
			r.Header["XroadVnpt-sign-header"] = []string{strings.Replace(r.Header["XroadVnpt-sign-header"][0], `"evil"`, `"victim"`, 1)}
			return r
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, raw := x.vxpDo(tc.req())
			vxpFailed(t, tc.name, a, "401")
			if strings.Contains(string(raw), x.secrets["victim"]) {
				t.Fatal("the answer holds a secret")
			}
		})
	}
	x.vxpRotate("evil")
	a, _ := x.vxpDo(x.vxpSend("evil", old, vxpEvilAgency, file))
	vxpFailed(t, "rotated secret", a, "401")
	// Removed: the system gives up its agency, is removed, its secret goes.
	if err := x.admin.RegisterAgency(ctxT(t), broker.Agency{Code: vxpEvilAgency, Name: "x", State: broker.StateDeleted, System: "evil",
		Bindings: mustLookup(t, x.admin, vxpEvilAgency).Bindings}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(vxp.SecretPath(x.bus.Keystore, "evil")); err != nil {
		t.Fatal(err)
	}
	vxpFailed(t, "removed secret", x.vxpCall("getAgenciesList", "evil", nil), "401")
	if n := x.sentBy(vxpEvilAgency) + x.sentBy(vxpVictimAgency); n != 0 {
		t.Fatalf("%d documents sent", n)
	}
}

func mustLookup(t *testing.T, c *broker.Client, code string) *broker.Agency {
	a, err := c.LookupAgency(ctxT(t), code)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// A system sends only as the agencies it serves.
func TestVXPForeignFrom(t *testing.T) {
	x := newVXPArena(t)
	sec := x.secrets["evil"]
	for _, tc := range []struct{ name, from, fileFrom string }{
		{"from a native agency", victimSender, victimSender},
		{"from the victim system's agency", vxpVictimAgency, vxpVictimAgency},
		{"own system id, foreign edXML sender", "evil", vxpVictimAgency},
		{"own agency in from, foreign edXML sender", vxpEvilAgency, victimSender},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := x.vxpDo(x.vxpSend("evil", sec, tc.from, vxpEdoc(tc.fileFrom, victimRecipient)))
			vxpFailed(t, tc.name, a, "403")
		})
	}
	for _, code := range []string{victimSender, vxpVictimAgency, vxpEvilAgency} {
		if n := x.sentBy(code); n != 0 {
			t.Fatalf("%s sent %d", code, n)
		}
	}
	// registerAgency cannot take over an agency of another system, nor a
	// native agency.
	for _, code := range []string{vxpVictimAgency, victimRecipient} {
		r := x.vxpRequest(http.MethodPost, "registerAgency", "evil", sec, nil, []byte(`{"code":"`+code+`","name":"mine"}`))
		a, _ := x.vxpDo(r)
		vxpFailed(t, "registerAgency "+code, a, "403")
		if got := mustLookup(t, x.admin, code); got.System == "evil" || got.Name == "mine" {
			t.Fatalf("%s taken: %+v", code, got)
		}
		vxpFailed(t, "deleteAgency "+code, x.vxpCall("deleteAgency", "evil", map[string]string{"AgencyCode": code}), "403")
	}
}

// Another system's document: not listed, not readable, not acknowledged,
// not followed.
func TestVXPOtherSystemsDocument(t *testing.T) {
	x := newVXPArena(t)
	ctx := ctxT(t)
	secret := "Mật " + envelope.NewID()
	res, err := x.client(victimSender).Send(ctx, envelope.New(victimSender, []string{vxpVictimAgency}, "Mật: chỉ gửi H15"),
		broker.File{Name: "mat.txt", Reader: strings.NewReader(secret), Size: int64(len(secret))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x.admin.WaitState(ctx, res.ID, vxpVictimAgency, envelope.StateSent); err != nil {
		t.Fatal(err)
	}
	if a := x.vxpCall("getReceivedEdocList", "evil", map[string]string{"messagetype": "edoc"}); len(a["data"].([]any)) != 0 {
		t.Fatalf("evil lists %v", a["data"])
	}
	for _, op := range []string{"getEdoc", "downloadEdoc"} {
		out, raw := x.vxpDo(x.vxpRequest(http.MethodPost, op, "evil", x.secrets["evil"], map[string]string{"docId": res.ID}, []byte("{}")))
		vxpFailed(t, op, out, "404")
		if strings.Contains(string(raw), secret) {
			t.Fatalf("%s leaked the content", op)
		}
	}
	for _, st := range []string{"done", "fail", "processing"} {
		vxpFailed(t, "updateStatus "+st, x.vxpCall("updateStatus", "evil", map[string]string{"status": st, "docId": res.ID}), "404")
	}
	vxpFailed(t, "getSentEdocList", x.vxpCall("getSentEdocList", "evil", map[string]string{"docId": res.ID}), "404")
	// Still waiting for the victim, undelivered, untouched.
	if tr, err := x.admin.Tracking(ctx, res.ID, vxpVictimAgency); err != nil || tr.State != envelope.StateSent {
		t.Fatalf("tracking %+v (%v)", tr, err)
	}
	v := x.vxpCall("getReceivedEdocList", "victim", map[string]string{"messagetype": "edoc"})
	items, _ := v["data"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["status"] != "waiting" {
		t.Fatalf("victim lists %v", v)
	}
}

// Oversized bodies are refused before they are read; a replayed request
// sends nothing twice; a captured signature does not carry another body.
func TestVXPSizesAndReplays(t *testing.T) {
	x := newVXPArena(t)
	sec := x.secrets["evil"]
	// Oversized, declared: refused before authentication reads anything.
	r, _ := http.NewRequest(http.MethodPost, x.url+"/sendEdoc", io.LimitReader(zeros{}, 2<<20))
	r.ContentLength = 2 << 20
	a, _ := x.vxpDo(r)
	vxpFailed(t, "declared oversize", a, "413")
	// Oversized, chunked, with a valid signature.
	big := x.vxpSend("evil", sec, vxpEvilAgency, bytes.Repeat([]byte("x"), 2<<20))
	big.ContentLength = -1
	big.Body = io.NopCloser(io.MultiReader(bytes.NewReader(bytes.Repeat([]byte("x"), 2<<20)), strings.NewReader("\r\n")))
	a, _ = x.vxpDo(big)
	vxpFailed(t, "chunked oversize", a, "413")

	file := vxpEdoc(vxpEvilAgency, victimRecipient)
	first, _ := x.vxpDo(x.vxpSend("evil", sec, vxpEvilAgency, file))
	if first["status"] != "OK" {
		t.Fatalf("send: %v", first)
	}
	if _, err := x.admin.WaitState(ctxT(t), fmt.Sprint(first["DocId"]), victimRecipient, envelope.StateSent); err != nil {
		t.Fatal(err)
	}
	replay, _ := x.vxpDo(x.vxpSend("evil", sec, vxpEvilAgency, file))
	if replay["DocId"] != first["DocId"] {
		t.Fatalf("replay sent %v, first %v", replay["DocId"], first["DocId"])
	}
	if n := x.sentBy(vxpEvilAgency); n != 1 {
		t.Fatalf("%d documents after a replay", n)
	}
	// The captured signed header with another body.
	other := x.vxpSend("evil", sec, vxpEvilAgency, file)
	body := append(vxpEdoc(vxpEvilAgency, victimRecipient), '\r', '\n')
	other.Body, other.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	a, _ = x.vxpDo(other)
	vxpFailed(t, "captured signature, another body", a, "400")
	if n := x.sentBy(vxpEvilAgency); n != 1 {
		t.Fatalf("%d documents after another body", n)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// A document system's HTTP token acts for the agencies it serves, named
// with ?as=, and for no other; it dies with the system.
func TestSystemToken(t *testing.T) {
	x := newVXPArena(t)
	ctx := ctxT(t)
	tokens, err := httpapi.OpenTokens(ctx, x.admin.JetStream(), httpapi.TokensConfig{})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := tokens.Create(ctx, broker.SystemActor("evil"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := x.client(victimSender).Send(ctx, envelope.New(victimSender, []string{vxpVictimAgency}, "Mật: chỉ gửi H15"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x.admin.WaitState(ctx, res.ID, vxpVictimAgency, envelope.StateSent); err != nil {
		t.Fatal(err)
	}
	get := func(path string, header ...string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, x.api+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/v1/me?as=" + vxpEvilAgency); code != http.StatusOK || !strings.Contains(body, vxpEvilAgency) {
		t.Fatalf("own agency: %d %s", code, body)
	}
	if code, _ := get("/v1/inbox", httpapi.AsHeader, vxpEvilAgency); code != http.StatusOK {
		t.Fatalf("own agency by header: %d", code)
	}
	if code, _ := get("/v1/me"); code != http.StatusBadRequest {
		t.Fatalf("no as: %d", code)
	}
	for _, victim := range []string{vxpVictimAgency, victimSender, victimRecipient, "000.00.00.H00", "=victim"} {
		for _, path := range []string{"/v1/inbox?as=" + victim, "/v1/envelopes/" + res.ID + "?as=" + victim, "/v1/envelopes?as=" + victim} {
			code, body := get(path)
			if code != http.StatusForbidden || strings.Contains(body, "Mật") {
				t.Fatalf("%s: %d %s", path, code, body)
			}
		}
		if code, _ := get("/v1/inbox", httpapi.AsHeader, victim); code != http.StatusForbidden {
			t.Fatalf("as %s by header: %d", victim, code)
		}
	}
	// Its own agency cannot reach the victim's document either.
	if code, body := get("/v1/envelopes/" + res.ID + "?as=" + vxpEvilAgency); code == http.StatusOK || strings.Contains(body, "Mật") {
		t.Fatalf("victim's document as own agency: %d %s", code, body)
	}
	// A removed system's token is dead.
	x.vxpSystem("tmp", "000.00.00.H97")
	tmpTok, _, err := tokens.Create(ctx, broker.SystemActor("tmp"))
	if err != nil {
		t.Fatal(err)
	}
	a := mustLookup(t, x.admin, "000.00.00.H97")
	raw, err := x.bus.CA.SignBinding(signing.Binding{Agency: a.Code})
	if err != nil {
		t.Fatal(err)
	}
	a.System, a.Bindings = "", append(a.Bindings, raw)
	if err := x.admin.RegisterAgency(ctx, *a); err != nil {
		t.Fatal(err)
	}
	if err := x.admin.RemoveSystem(ctx, "tmp"); err != nil {
		t.Fatal(err)
	}
	tok = tmpTok
	if code, _ := get("/v1/me?as=000.00.00.H97"); code != http.StatusUnauthorized {
		t.Fatalf("removed system's token: %d", code)
	}
}
