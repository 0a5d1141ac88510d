package attacks_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/audit"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/httpapi"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/broker/tsa"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/storage"
	"github.com/nats-io/nats.go/jetstream"
)

// Attacks on the per-document evidence download and on time-stamping: an
// agency gets the evidence of a document it sent or received, nothing of
// anyone else's; ids are not paths; an agency can neither forge a token
// nor lift (or set) the bus's refusal to accept documents.

// evidenceArena is the arena with the audit chain, a time-stamper on a
// local TSA, and an HTTP API that serves evidence (the arena's own has
// no evidence source).
type evidenceArena struct {
	*arena
	chainer *audit.Chainer
	ts      *audit.Timestamper
	tsa     *tsa.Authority
	api     *httptest.Server
}

func newEvidenceArena(t *testing.T) *evidenceArena {
	t.Helper()
	a := newArena(t)
	ctx := ctxT(t)
	auth, err := tsa.NewAuthority(a.bus.CA, "attack TSA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(auth)
	t.Cleanup(srv.Close)
	client, err := tsa.NewClient([]string{srv.URL}, auth.Roots())
	if err != nil {
		t.Fatal(err)
	}
	ts, err := audit.StartTimestamper(ctx, a.admin.JetStream(), audit.TimestamperConfig{TSA: client, Logger: bustest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ts.Stop)
	key, err := audit.OpenKey(t.TempDir(), a.bus.CA)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := audit.StartChainer(ctx, a.admin.JetStream(), audit.ChainerConfig{Key: key, Interval: time.Hour, Logger: bustest.Logger(), OnCheckpoint: ts.Checkpointed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Stop(context.Background()) })
	r, err := audit.NewReader(a.admin.JetStream(), audit.ReaderConfig{Verifier: a.admin.Verifier(), Store: a.admin.Store()})
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := httpapi.OpenTokens(ctx, a.admin.JetStream(), httpapi.TokensConfig{})
	if err != nil {
		t.Fatal(err)
	}
	hs, err := httpapi.New(httpapi.Config{Client: a.admin, Auth: tokens, Logger: bustest.Logger(), Evidence: evidenceRoots{r, auth}})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(hs)
	t.Cleanup(api.Close)
	t.Cleanup(hs.Drain)
	return &evidenceArena{arena: a, chainer: ch, ts: ts, tsa: auth, api: api}
}

type evidenceRoots struct {
	r *audit.Reader
	a *tsa.Authority
}

func (e evidenceRoots) Evidence(ctx context.Context, o audit.EvidenceOptions, w io.Writer) (*audit.Manifest, error) {
	o.TSARoots = e.a.Roots()
	return e.r.Evidence(ctx, o, w)
}

// sealed checkpoints and time-stamps everything stored so far.
func (ea *evidenceArena) sealed() {
	ea.t.Helper()
	cp, err := ea.chainer.Checkpoint(ctxT(ea.t))
	if err != nil {
		ea.t.Fatal(err)
	}
	bustest.Eventually(ea.t, 30*time.Second, fmt.Sprintf("checkpoint %d not time-stamped", cp.Seq), func() error {
		if st := ea.ts.Status(); st.LastSeq < cp.Seq {
			return fmt.Errorf("%+v", st)
		}
		return nil
	})
}

// get asks the evidence API as code with a raw path (no cleaning).
func (ea *evidenceArena) get(code, rawPath string) (*http.Response, []byte) {
	ea.t.Helper()
	req, err := http.NewRequestWithContext(ctxT(ea.t), "GET", ea.api.URL, nil)
	if err != nil {
		ea.t.Fatal(err)
	}
	req.URL.Opaque = rawPath
	if code != "" {
		req.Header.Set("Authorization", "Bearer "+ea.tok[code])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ea.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp, b.Bytes()
}

func TestEvidenceOnlyForParties(t *testing.T) {
	ea := newEvidenceArena(t)
	id, secret := ea.victimSend()
	ea.sealed()
	path := "/v1/envelopes/" + id + "/evidence"

	// The sender and the recipient get a package that verifies offline.
	for _, code := range []string{victimSender, victimRecipient} {
		resp, body := ea.get(code, path+"?attachments=1")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/zip" {
			t.Fatalf("%s: %d %s", code, resp.StatusCode, body)
		}
		rep, err := audit.VerifyBundle(ctxT(t), bytes.NewReader(body), int64(len(body)), audit.VerifyOptions{RequireCoverage: true, TSARoots: ea.tsa.Roots()})
		if err != nil {
			t.Fatalf("%s's package: %v", code, err)
		}
		if len(rep.Timestamps) == 0 {
			t.Fatalf("%s's package has no time-stamp", code)
		}
	}
	// A third agency, with a token or with none: nothing, and the same
	// answer as for an id that does not exist, so it cannot even learn
	// that the document exists.
	resp, body := ea.get(attacker, path)
	respNone, bodyNone := ea.get(attacker, "/v1/envelopes/"+envelope.NewID()+"/evidence")
	if resp.StatusCode != http.StatusNotFound || respNone.StatusCode != http.StatusNotFound {
		t.Fatalf("third agency: %d %s / unknown id: %d", resp.StatusCode, body, respNone.StatusCode)
	}
	if bytes.Contains(body, []byte(secret)) || bytes.Contains(body, []byte("Sơn La")) || bytes.Contains(body, []byte(victimSender)) {
		t.Fatalf("the refusal leaks: %s", body)
	}
	if strings.ReplaceAll(string(body), id, "ID") != strings.ReplaceAll(string(bodyNone), respNone.Request.URL.Opaque[len("/v1/envelopes/"):len("/v1/envelopes/")+36], "ID") {
		t.Fatalf("a third agency can tell an existing document from a missing one:\n%s\n%s", body, bodyNone)
	}
	if resp, _ := ea.get("", path); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
}

// A recipient gets its own copy and what it reported, never what another
// recipient of the same document received or answered.
func TestEvidenceRecipientSeesOnlyItsOwn(t *testing.T) {
	ea := newEvidenceArena(t)
	ctx := ctxT(t)
	res, err := ea.client(victimSender).Send(ctx, envelope.New(victimSender, []string{victimRecipient, attacker2}, "Gửi hai tỉnh"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ea.admin.WaitState(ctx, res.ID, attacker2, envelope.StateSent); err != nil {
		t.Fatal(err)
	}
	ea.sealed()
	resp, body := ea.get(attacker2, "/v1/envelopes/"+res.ID+"/evidence")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	rep, err := audit.VerifyBundle(ctx, bytes.NewReader(body), int64(len(body)), audit.VerifyOptions{TSARoots: ea.tsa.Roots()})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.To != attacker2 && r.From != attacker2 {
			t.Fatalf("%s's package holds record %d for %s from %s", attacker2, r.Seq, r.To, r.From)
		}
	}
	if rep.Records == 0 {
		t.Fatal("no record")
	}
}

// Ids are UUIDs, not paths: traversal, other spellings of a real id,
// huge or odd ids all get a plain 404 (or 400), never a file, never 500.
func TestEvidenceForgedIDs(t *testing.T) {
	ea := newEvidenceArena(t)
	id, _ := ea.victimSend()
	ea.sealed()
	ids := []string{
		"..%2F..%2F..%2Fetc%2Fpasswd",
		"%2e%2e",
		url.PathEscape("../" + id),
		"urn:uuid:" + id,
		"{" + id + "}",
		strings.ReplaceAll(id, "-", ""),
		strings.ToUpper(id) + "%00",
		id + "%20",
		strings.Repeat("a", 5000),
		"*",
		"%2F",
	}
	for _, forged := range ids {
		for _, code := range []string{attacker, victimSender} {
			resp, body := ea.get(code, "/v1/envelopes/"+forged+"/evidence")
			if resp.StatusCode == http.StatusOK || resp.StatusCode >= 500 {
				t.Fatalf("%s asking %q: %d %.200s", code, forged, resp.StatusCode, body)
			}
			if bytes.HasPrefix(body, []byte("PK")) {
				t.Fatalf("%s asking %q got a zip", code, forged)
			}
		}
	}
	// Query tricks do not widen what a third agency gets.
	for _, q := range []string{"?agency=" + url.QueryEscape(victimSender), "?attachments=1&as=" + victimSender, "?attachments=yes"} {
		resp, _ := ea.get(attacker, "/v1/envelopes/"+id+"/evidence"+q)
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("%s with %s: 200", attacker, q)
		}
	}
}

// An agency can neither store a forged token nor touch the bus's
// refusal flag: both would let it forge evidence or stop the bus.
func TestTimestampingNotWritableByAgencies(t *testing.T) {
	ea := newEvidenceArena(t)
	ctx := ctxT(t)
	ea.victimSend()
	ea.sealed()
	nc, _ := ea.raw(attacker)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// A denied publish gets no ack: each attempt waits a short while.
	try := func(subject string, data []byte) error {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := js.Publish(pctx, subject, data)
		return err
	}
	if err := try(audit.TimestampSubject, []byte("forged token")); err == nil {
		t.Fatal("an agency stored a time-stamp token")
	}
	refuse, _ := json.Marshal(broker.TimestampingState{Refusing: true, Reason: "attack"})
	if err := try("$KV."+record.DirectoryBucket+"."+broker.TimestampingKey, refuse); err == nil {
		t.Fatal("an agency set the bus's refusal flag")
	}
	// The bus still accepts documents.
	if _, err := ea.client(victimSender).Send(ctx, envelope.New(victimSender, []string{victimRecipient}, "vẫn gửi được")); err != nil {
		t.Fatalf("send after the attempts: %v", err)
	}
	if st := ea.ts.Status(); st.Refusing {
		t.Fatalf("refusing: %+v", st)
	}
}

// H99 lists G22's attachment (by its hash) in a signed envelope of its
// own: the HTTP API refuses to send it, and published straight on the bus
// with H99's own credentials it gets H99 no bytes in the evidence package
// either: the attachment is left out, and the manifest says so.
func TestEvidenceLeavesOutAttachmentsNotHeld(t *testing.T) {
	ea := newEvidenceArena(t)
	ctx := ctxT(t)
	_, secret := ea.victimSend()
	sum := sha256.Sum256([]byte(secret))
	hexSum := hex.EncodeToString(sum[:])
	e := envelope.New(attacker, []string{attacker2}, "Xin tệp của người khác")
	e.Attachments = []envelope.Attachment{{Name: "x.txt", MediaType: "text/plain", Size: int64(len(secret)), SHA256: hexSum, Key: storage.Key(hexSum)}}
	raw, err := ea.bus.Identity(attacker).Seal(e)
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := httpPostTo(t, ea.api.URL, ea.tok[attacker], httpPart{name: "signed", data: raw}); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("HTTP send of bytes never held: %d %s", resp.StatusCode, body)
	}
	_, js := ea.bus.AgencyConnect(t, attacker)
	if _, err := js.Publish(ctx, record.DocSubject(attacker2, attacker), raw); err != nil {
		t.Fatal(err)
	}
	if _, err := ea.admin.WaitState(ctx, e.ID, attacker2, envelope.StateSent); err != nil {
		t.Fatal(err)
	}
	ea.sealed()
	resp, body := ea.get(attacker, "/v1/envelopes/"+e.ID+"/evidence?attachments=1")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("evidence: %d %s", resp.StatusCode, body)
	}
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	var m audit.Manifest
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(rc)
		rc.Close()
		if bytes.Contains(data, []byte(secret)) {
			t.Fatalf("evidence package for %s holds %s's attachment it never held, as %s", attacker, victimSender, f.Name)
		}
		if f.Name == audit.ManifestFile {
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(m.Attachments) != 0 || !slices.ContainsFunc(m.Warnings, func(w string) bool { return strings.Contains(w, hexSum) && strings.Contains(w, "not included") }) {
		t.Fatalf("manifest: attachments %+v, warnings %q", m.Attachments, m.Warnings)
	}
}
