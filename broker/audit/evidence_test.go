package audit_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/docaxis/docaxis/signing"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/audit"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/tsa"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// stampedBus is an audit bus whose chainer hands its checkpoints to a
// time-stamper asking a local TSA that a test can take down.
type stampedBus struct {
	*auditBus
	tsa   *tsa.Authority
	down  atomic.Bool
	ts    *audit.Timestamper
	srv   *httptest.Server
	clock atomic.Int64 // added to time.Now, for the limit
}

func startStampedBus(t *testing.T, limit time.Duration) *stampedBus {
	t.Helper()
	ab := startAuditBus(t)
	ab.stopChainer()
	a, err := tsa.NewAuthority(ab.CA, "test TSA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sb := &stampedBus{auditBus: ab, tsa: a}
	sb.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sb.down.Load() {
			http.Error(w, "TSA down", http.StatusServiceUnavailable)
			return
		}
		a.ServeHTTP(w, r)
	}))
	t.Cleanup(sb.srv.Close)
	c, err := tsa.NewClient([]string{sb.srv.URL}, a.Roots())
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(ab.URL())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	sb.ts, err = audit.StartTimestamper(ctxT(t), js, audit.TimestamperConfig{TSA: c, MaxUntimestamped: limit,
		Retry: 10 * time.Millisecond, MaxRetry: 50 * time.Millisecond, Logger: bustest.Logger(),
		Now: func() time.Time { return time.Now().Add(time.Duration(sb.clock.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.ts.Stop(); nc.Close() })
	ch, err := audit.StartChainer(ctxT(t), ab.jsForChainer(t), audit.ChainerConfig{Key: ab.key, Interval: time.Hour, Logger: bustest.Logger(), OnCheckpoint: sb.ts.Checkpointed})
	if err != nil {
		t.Fatal(err)
	}
	ab.chainer = ch
	return sb
}

// jsForChainer opens the chainer's connection as startChainer does.
func (ab *auditBus) jsForChainer(t *testing.T) jetstream.JetStream {
	nc, err := nats.Connect(ab.URL())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	ab.nc, ab.js = nc, js
	return js
}

// stamped waits until a token covers the chain through seq.
func (sb *stampedBus) stamped(t *testing.T, seq uint64) {
	t.Helper()
	bustest.Eventually(t, 30*time.Second, fmt.Sprintf("no token through seq %d", seq), func() error {
		if st := sb.ts.Status(); st.LastSeq < seq {
			return fmt.Errorf("%+v", st)
		}
		return nil
	})
}

func (sb *stampedBus) evidence(t *testing.T, id, agency string) ([]byte, *audit.Manifest, error) {
	var buf bytes.Buffer
	m, err := sb.reader().Evidence(ctxT(t), audit.EvidenceOptions{ID: id, Agency: agency, TSARoots: sb.tsa.Roots()}, &buf)
	return buf.Bytes(), m, err
}

func TestEvidencePackage(t *testing.T) {
	sb := startStampedBus(t, time.Hour)
	ctx := ctxT(t)
	id := sb.send(govOffice, ngheAn, sonLa)
	sb.send(sonLa, govOffice) // other traffic in the same batch
	sb.receiveAndAccept(t, ngheAn, id)
	cp := sb.checkpoint()
	sb.stamped(t, cp.Seq)

	zb, m, err := sb.evidence(t, id, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Records) < 3 || len(m.Timestamps) != 1 || !m.Covered {
		t.Fatalf("manifest: %d records, %d tokens, covered %v, warnings %v", len(m.Records), len(m.Timestamps), m.Covered, m.Warnings)
	}
	rep, err := audit.VerifyBundle(ctx, bytes.NewReader(zb), int64(len(zb)), audit.VerifyOptions{RequireCoverage: true})
	if err != nil {
		t.Fatalf("verify: %v\n%+v", err, rep.Problems)
	}
	if rep.Verified != len(m.Records) || len(rep.Timestamps) != 1 {
		t.Fatalf("report: %+v", rep)
	}
	checkWithOpenSSL(t, zb, m)

	// A recipient gets its own copy and what it reported, not the other
	// recipient's; a third agency nothing.
	_, mr, err := sb.evidence(t, id, ngheAn)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range mr.Records {
		if r.To != ngheAn && r.From != ngheAn {
			t.Fatalf("recipient %s got record %+v", ngheAn, r)
		}
	}
	if _, _, err := sb.evidence(t, id, "000.00.00.H99"); !errors.Is(err, audit.ErrNoDocument) {
		t.Fatalf("third agency: %v", err)
	}
}

func checkWithOpenSSL(t *testing.T, zb []byte, m *audit.Manifest) {
	ossl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl not installed")
		}
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	zr, _ := zip.NewReader(bytes.NewReader(zb), int64(len(zb)))
	for _, f := range zr.File {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(f.Name)), 0o700)
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		os.WriteFile(filepath.Join(dir, f.Name), b, 0o600)
	}
	readme, _ := os.ReadFile(filepath.Join(dir, audit.EvidenceReadme))
	for _, ts := range m.Timestamps {
		if !strings.Contains(string(readme), "openssl ts -verify -in "+ts.File) {
			t.Fatalf("README lacks the openssl step for %s", ts.File)
		}
		cmd := exec.Command(ossl, "ts", "-verify", "-in", ts.File, "-data", ts.Checkpoint, "-CAfile", audit.TSACAFile, "-untrusted", "certs/tsa.pem")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Verification: OK") {
			t.Fatalf("openssl ts -verify: %v\n%s", err, out)
		}
		cmd = exec.Command(ossl, "ts", "-reply", "-in", ts.File, "-text")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Status: Granted") {
			t.Fatalf("openssl ts -reply -text: %v\n%s", err, out)
		}
	}
	cmd := exec.Command("sha256sum", "-c", "SHA256SUMS")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sha256sum -c: %v\n%s", err, out)
	}
}

// TestEvidenceTampering: every change is found and named.
func TestEvidenceTampering(t *testing.T) {
	sb := startStampedBus(t, time.Hour)
	ctx := ctxT(t)
	id := sb.send(govOffice, ngheAn)
	sb.receiveAndAccept(t, ngheAn, id)
	sb.stamped(t, sb.checkpoint().Seq)
	first, _, err := sb.evidence(t, id, "")
	if err != nil {
		t.Fatal(err)
	}
	// A second batch, for a token to swap in.
	id2 := sb.send(govOffice, ngheAn)
	sb.stamped(t, sb.checkpoint().Seq)
	other, m2, err := sb.evidence(t, id2, "")
	if err != nil {
		t.Fatal(err)
	}
	otherTSR := readZip(t, other)[m2.Timestamps[0].File]
	_, foreign := newForeignTSA(t)

	files := readZip(t, first)
	var rec, tsr string
	for n := range files {
		switch {
		case strings.HasPrefix(n, "records/") && rec == "":
			rec = n
		case strings.HasPrefix(n, "timestamps/"):
			tsr = n
		}
	}
	cpName := strings.Replace(strings.Replace(tsr, "timestamps/", "checkpoints/", 1), ".tsr", ".jws", 1)
	tests := []struct {
		name   string
		edit   func(map[string][]byte)
		want   error
		naming string
	}{
		{"record byte changed", func(f map[string][]byte) { f[rec] = flip(f[rec]) }, audit.ErrBundle, rec},
		{"record removed", func(f map[string][]byte) { delete(f, rec) }, audit.ErrMissingRecord, rec},
		{"token swapped", func(f map[string][]byte) { f[tsr] = otherTSR; resum(f, tsr) }, audit.ErrTimestamp, tsr},
		{"token garbage", func(f map[string][]byte) { f[tsr] = []byte("garbage"); resum(f, tsr) }, audit.ErrTimestamp, tsr},
		{"token from an untrusted TSA", func(f map[string][]byte) { f[tsr] = foreign(f[cpName]); resum(f, tsr) }, audit.ErrTimestamp, tsr},
		{"token signature changed", func(f map[string][]byte) { f[tsr] = flipAt(f[tsr], len(f[tsr])-5); resum(f, tsr) }, audit.ErrTimestamp, tsr},
		{"token removed", func(f map[string][]byte) { delete(f, tsr) }, audit.ErrBundle, tsr},
		{"link changed", func(f map[string][]byte) {
			i := bytes.Index(f[audit.LinksFile], []byte(`"digest":"`)) + len(`"digest":"`)
			f[audit.LinksFile] = flipAt(f[audit.LinksFile], i)
			resum(f, audit.LinksFile)
		}, audit.ErrChainBroken, audit.LinksFile},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := readZip(t, first)
			tc.edit(f)
			zb := writeZip(t, f)
			rep, err := audit.VerifyBundle(ctx, bytes.NewReader(zb), int64(len(zb)), audit.VerifyOptions{RequireCoverage: true})
			if err == nil {
				t.Fatal("tampered package verified")
			}
			found := false
			for _, p := range rep.Problems {
				if errors.Is(p, tc.want) && strings.Contains(p.Error(), tc.naming) {
					found = true
				}
			}
			if !found {
				t.Fatalf("no problem %v naming %s: %v", tc.want, tc.naming, rep.Problems)
			}
		})
	}
}

// TestTokenTimeSkew: a token whose time lies well before the checkpoint it
// covers (a TSA clock, or a bus clock, that lies) is named.
func TestTokenTimeSkew(t *testing.T) {
	sb := startStampedBus(t, time.Hour)
	sb.tsa.Now = func() time.Time { return time.Now().Add(-time.Hour) }
	id := sb.send(govOffice, ngheAn)
	sb.stamped(t, sb.checkpoint().Seq)
	zb, _, err := sb.evidence(t, id, "")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.VerifyBundle(ctxT(t), bytes.NewReader(zb), int64(len(zb)), audit.VerifyOptions{})
	if err == nil {
		t.Fatal("a token an hour before its checkpoint verified")
	}
	for _, p := range rep.Problems {
		if errors.Is(p, audit.ErrTimestamp) && strings.Contains(p.Error(), "skew") {
			return
		}
	}
	t.Fatalf("skewed token not named: %v", rep.Problems)
}

// TestRefusalPastLimit: the TSA down past the limit makes the bus refuse
// new documents with a clear error; back up, it accepts again and the
// records stored meanwhile are covered by the next token.
func TestRefusalPastLimit(t *testing.T) {
	sb := startStampedBus(t, time.Hour)
	var alerts atomic.Int32
	sb.ts.Subscribe(func(a audit.Alert) {
		if a.Kind == audit.AlertRefusing {
			alerts.Add(1)
		}
	})
	sb.down.Store(true)
	id := sb.send(govOffice, ngheAn)
	cp := sb.checkpoint()
	waitFor(t, func() bool { return sb.ts.Status().TSA.Failures > 0 })
	sb.clock.Store(int64(2 * time.Hour)) // past the limit
	waitFor(t, func() bool { return sb.ts.Status().Refusing })
	if alerts.Load() == 0 {
		t.Fatal("no alert")
	}
	e := envelope.New(govOffice, []string{ngheAn}, "refused")
	var err error
	waitFor(t, func() bool { _, err = sb.Client(govOffice).Send(ctxT(t), e); return err != nil })
	if !errors.Is(err, broker.ErrTimestamping) || !strings.Contains(err.Error(), "time-stamp") {
		t.Fatalf("send while refusing: %v", err)
	}
	sb.down.Store(false)
	sb.stamped(t, cp.Seq)
	waitFor(t, func() bool { return !sb.ts.Status().Refusing })
	waitFor(t, func() bool {
		_, err = sb.Client(govOffice).Send(ctxT(t), envelope.New(govOffice, []string{ngheAn}, "accepted again"))
		return err == nil
	})
	// Nothing lost: the document sent before the outage has its evidence.
	if _, m, err := sb.evidence(t, id, ""); err != nil || !m.Covered {
		t.Fatalf("evidence after recovery: %v %+v", err, m)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	bustest.Eventually(t, 30*time.Second, "condition", func() error {
		if cond() {
			return nil
		}
		return errors.New("not met in 30s")
	})
}

func newForeignTSA(t *testing.T) (*tsa.Authority, func([]byte) []byte) {
	ca := startAuditBusCA(t)
	a, err := tsa.NewAuthority(ca, "foreign TSA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return a, func(data []byte) []byte {
		q, _ := tsa.NewRequest(data)
		b, err := a.Sign(q)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

func flip(b []byte) []byte { return flipAt(b, len(b)/2) }

func flipAt(b []byte, i int) []byte {
	c := bytes.Clone(b)
	if c[i] == 'a' {
		c[i] = 'b'
	} else if c[i] >= '0' && c[i] <= 'f' {
		c[i] = 'a'
	} else {
		c[i] ^= 1
	}
	return c
}

func readZip(t *testing.T, zb []byte) map[string][]byte {
	zr, err := zip.NewReader(bytes.NewReader(zb), int64(len(zb)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, _ := f.Open()
		out[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	return out
}

func writeZip(t *testing.T, files map[string][]byte) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for n, b := range files {
		w, _ := zw.Create(n)
		w.Write(b)
	}
	zw.Close()
	return buf.Bytes()
}

// resum makes the manifest and SHA256SUMS agree with a changed file, as
// a forger would, so that what is checked is the evidence itself.
func resum(f map[string][]byte, name string) {
	var m map[string]any
	if err := json.Unmarshal(f[audit.ManifestFile], &m); err != nil {
		panic(err)
	}
	m["files"].(map[string]any)[name] = hexSum(f[name])
	f[audit.ManifestFile], _ = json.MarshalIndent(m, "", "  ")
	var names []string
	for n := range f {
		if n != audit.SumsFile {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var sb strings.Builder
	for _, n := range names {
		fmt.Fprintf(&sb, "%s  %s\n", hexSum(f[n]), n)
	}
	f[audit.SumsFile] = []byte(sb.String())
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func startAuditBusCA(t *testing.T) *signing.CA {
	ca, err := signing.NewCA("foreign CA", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// receiveAndAccept fetches as's mailbox (the receipt) and marks id
// accepted.
func (sb *stampedBus) receiveAndAccept(t *testing.T, as, id string) {
	t.Helper()
	ctx := ctxT(t)
	c := sb.Client(as)
	mb, err := c.Mailbox(ctx, as)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		_, err := mb.Fetch(ctx, 0, 200*time.Millisecond, func(context.Context, *broker.Delivery) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Mark(ctx, as, id, envelope.StateAccepted, broker.MarkOptions{})
		return err == nil
	})
}
