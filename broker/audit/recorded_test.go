package audit_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/audit"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go"
)

// oldCA is a root that has been valid for age: the development CA is born
// an hour ago, and judging a signature a day back needs a chain valid then.
func oldCA(t testing.TB, age time.Duration) *signing.CA {
	t.Helper()
	key, err := signing.NewKey(signing.KeyECDSA)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: "old agency CA", Organization: []string{"docaxis test"}},
		NotBefore:             now.Add(-age),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &signing.CA{Cert: cert, Key: key}
}

// oldIdentity issues code a certificate from ca valid since 40 days ago.
func oldIdentity(t testing.TB, ca *signing.CA, code string) *signing.Identity {
	t.Helper()
	id, err := ca.Issue(code, "", signing.IssueOptions{NotBefore: time.Now().Add(-40 * 24 * time.Hour), Validity: 400 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// sealAt signs a document from id to "to" that claims to be created at
// created, whatever that time (Seal would refuse one in the future).
func sealAt(t testing.TB, id *signing.Identity, to string, created time.Time, subject string) (*envelope.Envelope, []byte) {
	t.Helper()
	e := envelope.New(id.Agency, []string{to}, subject)
	e.Created = created.UTC().Truncate(time.Millisecond)
	payload, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := envelope.Sign(payload, id.Key, id.Chain)
	if err != nil {
		t.Fatal(err)
	}
	return e, raw
}

// verdicts runs the mailbox of agency over what is waiting and returns
// its verdict per envelope id.
func mailboxVerdicts(t testing.TB, c *broker.Client, agency string, want int) map[string]broker.Outcome {
	t.Helper()
	ctx := ctxT(t)
	var mu sync.Mutex
	got := map[string]broker.Outcome{}
	mb, err := c.Mailbox(ctx, agency, broker.OnOutcome(func(o broker.Outcome) {
		mu.Lock()
		got[o.ID] = o
		mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	for len(got) < want && ctx.Err() == nil {
		if _, err := mb.Fetch(ctx, want, 200*time.Millisecond, func(context.Context, *broker.Delivery) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) < want {
		t.Fatalf("mailbox of %s processed %d envelopes, want %d", agency, len(got), want)
	}
	return got
}

// verdictsByID collects replay and offline verdicts on documents by id.
func replayVerdicts(t testing.TB, ab *auditBus) map[string]*audit.Record {
	t.Helper()
	recs, _ := replayAll(t, ab.reader(), audit.Query{})
	out := map[string]*audit.Record{}
	for _, r := range recs {
		if r.Type == "document" {
			out[r.ID] = r
		}
	}
	return out
}

func offlineVerdicts(t testing.TB, ab *auditBus) (map[string]audit.RecordResult, *audit.Manifest, []byte) {
	t.Helper()
	var buf bytes.Buffer
	m, err := ab.reader().Export(ctxT(t), audit.ExportOptions{}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := verifyBytes(buf.Bytes(), audit.VerifyOptions{})
	if err != nil {
		t.Fatalf("verify: %v (notes %v)", err, rep.Notes)
	}
	out := map[string]audit.RecordResult{}
	for _, r := range rep.Results {
		if r.Type == "document" {
			out[r.ID] = r
		}
	}
	return out, m, buf.Bytes()
}

// Replay and offline verify judge a record at the time the bus recorded
// it, with the mailbox's window: what the mailbox refused never comes out
// "verified", and what it accepted does.
func TestJudgedAtRecordedTime(t *testing.T) {
	ab := startAuditBus(t)
	ctx := ctxT(t)
	ca := oldCA(t, 60*24*time.Hour)
	ab.Trust.AddRoot(ca.Cert)
	revoked := oldIdentity(t, ca, "000.00.00.H31")
	good := oldIdentity(t, ca, "000.00.00.H32")
	ab.Register(revoked, false)
	ab.Register(good, false)
	now := time.Now()
	revokedAt := now.Add(-2 * time.Hour)
	crl, err := ca.NewCRL([]signing.Revocation{{Serial: revoked.Certificate().SerialNumber, At: revokedAt}}, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := ab.Client().PublishCRL(ctx, crl); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		id      *signing.Identity
		created time.Duration // from now; the bus stores it a moment after now
		ok      bool
		reason  string
	}{
		{"revoked key, signed before the revocation, within the backdating window", revoked, -3 * time.Hour, true, ""},
		{"revoked key, backdated before the revocation, more than MaxBackdate before recording", revoked, -signing.MaxBackdate - time.Hour, false, "more than 24h0m0s before it was recorded"},
		{"revoked key, signed after the revocation", revoked, -time.Hour, false, "revoked"},
		{"dated ahead within the mailbox's skew", good, signing.MaxSkew - 3*time.Minute, true, ""},
		{"dated ahead beyond the skew", good, signing.MaxSkew + 5*time.Minute, false, "after it was recorded"},
		{"backdated within the window", good, -signing.MaxBackdate + time.Hour, true, ""},
		{"backdated beyond the window", good, -signing.MaxBackdate - time.Hour, false, "more than 24h0m0s before it was recorded"},
	}
	ids := map[string]int{}
	c := ab.Client()
	for i, tt := range tests {
		e, raw := sealAt(t, tt.id, ngheAn, now.Add(tt.created), tt.name)
		if _, err := c.JetStream().Publish(ctx, record.DocSubject(ngheAn, tt.id.Agency), raw); err != nil {
			t.Fatal(err)
		}
		ids[e.ID] = i
	}
	mailbox := mailboxVerdicts(t, ab.Client(ngheAn), ngheAn, len(tests))
	ab.checkpoint()
	replay := replayVerdicts(t, ab)
	offline, m, _ := offlineVerdicts(t, ab)
	exported := map[string]audit.ManifestRecord{}
	for _, mr := range m.Records {
		exported[mr.ID] = mr
	}
	for id, i := range ids {
		tt := tests[i]
		t.Run(tt.name, func(t *testing.T) {
			mo, r, o, x := mailbox[id], replay[id], offline[id], exported[id]
			if r == nil || o.ID == "" || x.ID == "" {
				t.Fatalf("record of %s missing: replay %v, offline %v, export %v", id, r != nil, o.ID != "", x.ID != "")
			}
			if mo.Verified != tt.ok || r.Verified != tt.ok || o.Verified != tt.ok || x.Verified != tt.ok {
				t.Fatalf("verified: mailbox %v (%s), replay %v (%s), export %v, offline %v (%s); want %v",
					mo.Verified, mo.Error, r.Verified, r.Reason, x.Verified, o.Verified, o.Reason, tt.ok)
			}
			if !strings.Contains(r.Reason, tt.reason) || !strings.Contains(o.Reason, tt.reason) {
				t.Fatalf("reasons: replay %q, offline %q, want %q", r.Reason, o.Reason, tt.reason)
			}
			if !r.Recorded.Equal(r.Stored) || !o.Recorded.Equal(o.Stored) {
				t.Errorf("recorded %s / %s, want the stored time %s", r.Recorded, o.Recorded, r.Stored)
			}
		})
	}
}

// A copy from another bus of a federation counts as recorded when the
// sender's bus recorded it (the federation's header), as the mailbox
// counts it: a copy that waited longer than the backdating window on a
// link that was down still verifies, online and offline, and the chain
// link carries that time so the bundle proves it. The header means
// nothing on a copy from an agency of this bus.
func TestJudgedAtFederationRecordedTime(t *testing.T) {
	ab := startAuditBus(t)
	ctx := ctxT(t)
	ca := oldCA(t, 60*24*time.Hour)
	ab.Trust.AddRoot(ca.Cert)
	kv, err := ab.js.KeyValue(ctx, record.DirectoryBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, broker.BusKey, []byte("HN")); err != nil {
		t.Fatal(err)
	}
	remote := oldIdentity(t, ca, "000.00.00.H33") // served by bus DN
	local := oldIdentity(t, ca, "000.00.00.H34")  // served here
	if err := ab.Service.Client.RegisterAgency(ctx, broker.Agency{Code: remote.Agency, Certificate: string(signing.EncodeCerts(remote.Chain...)), Bus: "DN"}); err != nil {
		t.Fatal(err)
	}
	ab.Register(local, false)

	now := time.Now()
	created := now.Add(-signing.MaxBackdate - 6*time.Hour)
	atSender := created.Add(time.Minute)
	tests := []struct {
		name     string
		id       *signing.Identity
		header   string
		ok       bool
		recorded time.Time // zero: the stored time
	}{
		{"remote copy held up by a link down", remote, atSender.Format(time.RFC3339Nano), true, atSender},
		{"remote copy without the header", remote, "", false, time.Time{}},
		{"remote copy with a header after the stored time", remote, now.Add(time.Hour).Format(time.RFC3339Nano), false, time.Time{}},
		{"remote copy with a bad header", remote, "yesterday", false, time.Time{}},
		{"local agency setting the header itself", local, atSender.Format(time.RFC3339Nano), false, time.Time{}},
	}
	ids := map[string]int{}
	c := ab.Client()
	for i, tt := range tests {
		e, raw := sealAt(t, tt.id, ngheAn, created, tt.name)
		msg := &nats.Msg{Subject: record.DocSubject(ngheAn, tt.id.Agency), Data: raw, Header: nats.Header{}}
		if tt.header != "" {
			msg.Header.Set(record.HeaderRecorded, tt.header)
		}
		if _, err := c.JetStream().PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
		ids[e.ID] = i
	}
	mailbox := mailboxVerdicts(t, ab.Client(ngheAn), ngheAn, len(tests))
	ab.checkpoint()
	replay := replayVerdicts(t, ab)
	offline, m, b := offlineVerdicts(t, ab)
	for id, i := range ids {
		tt := tests[i]
		t.Run(tt.name, func(t *testing.T) {
			mo, r, o := mailbox[id], replay[id], offline[id]
			if mo.Verified != tt.ok || r.Verified != tt.ok || o.Verified != tt.ok {
				t.Fatalf("verified: mailbox %v (%s), replay %v (%s), offline %v (%s); want %v",
					mo.Verified, mo.Error, r.Verified, r.Reason, o.Verified, o.Reason, tt.ok)
			}
			want := tt.recorded
			if want.IsZero() {
				want = r.Stored
			}
			if !r.Recorded.Equal(want.UTC()) || !o.Recorded.Equal(want.UTC()) {
				t.Fatalf("recorded: replay %s, offline %s, want %s", r.Recorded, o.Recorded, want.UTC())
			}
		})
	}

	// The recorded time is the chain's word, not the manifest's.
	var seq uint64
	for _, mr := range m.Records {
		if tests[ids[mr.ID]].recorded.IsZero() || mr.Type != "document" {
			continue
		}
		seq = mr.Seq
		if !mr.Recorded.Equal(atSender.UTC()) {
			t.Fatalf("manifest record %d recorded %s, want %s", mr.Seq, mr.Recorded, atSender.UTC())
		}
	}
	linkOf := func(bf *bundleFiles) (int, audit.Link) {
		lines := strings.Split(strings.TrimSpace(string(bf.data[audit.LinksFile])), "\n")
		for i, line := range lines {
			var l audit.Link
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				t.Fatal(err)
			}
			if l.Seq == seq {
				return i, l
			}
		}
		t.Fatalf("no link of seq %d", seq)
		return 0, audit.Link{}
	}
	setLink := func(bf *bundleFiles, i int, l audit.Link) {
		lines := strings.Split(strings.TrimSpace(string(bf.data[audit.LinksFile])), "\n")
		j, _ := json.Marshal(l)
		lines[i] = string(j)
		bf.data[audit.LinksFile] = []byte(strings.Join(lines, "\n") + "\n")
	}
	tamper := []struct {
		name string
		fn   func(bf *bundleFiles)
		want error
	}{{
		name: "manifest's recorded time moved",
		fn: func(bf *bundleFiles) {
			for i := range bf.m.Records {
				if bf.m.Records[i].Seq == seq {
					bf.m.Records[i].Recorded = bf.m.Records[i].Recorded.Add(-time.Hour)
				}
			}
		},
		want: audit.ErrRecordMismatch,
	}, {
		name: "link's and manifest's recorded time moved, link hash recomputed",
		fn: func(bf *bundleFiles) {
			i, l := linkOf(bf)
			setLink(bf, i, l.WithRecorded(l.Recorded.Add(time.Hour)))
			for i := range bf.m.Records {
				if bf.m.Records[i].Seq == seq {
					bf.m.Records[i].Recorded = l.Recorded.Add(time.Hour)
				}
			}
		},
		want: audit.ErrChainBroken,
	}, {
		name: "link's recorded time moved, hash kept",
		fn: func(bf *bundleFiles) {
			i, l := linkOf(bf)
			l.Recorded = l.Recorded.Add(time.Hour)
			setLink(bf, i, l)
		},
		want: audit.ErrChainBroken,
	}}
	for _, tt := range tamper {
		t.Run(tt.name, func(t *testing.T) {
			bf := unpack(t, bytes.Clone(b))
			tt.fn(bf)
			_, err := verifyBytes(bf.pack(t, true), audit.VerifyOptions{})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// Bundles of the first format (no recorded times) are still read; their
// records are judged at the stored time.
func TestBundleFormat1StillVerifies(t *testing.T) {
	_, b, m := historyBundle(t)
	bf := unpack(t, b)
	bf.m.Format = audit.BundleFormatV1
	rep, err := verifyBytes(bf.pack(t, true), audit.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Format != audit.BundleFormatV1 || rep.Verified != len(m.Records) {
		t.Fatalf("format %s, %d of %d verified", rep.Format, rep.Verified, len(m.Records))
	}
	bf.m.Format = "docaxis-audit-bundle/9"
	if _, err := verifyBytes(bf.pack(t, true), audit.VerifyOptions{}); !errors.Is(err, audit.ErrBundle) {
		t.Fatalf("unknown format: err = %v, want ErrBundle", err)
	}
}

// A link's layout: the first without a recorded time, the second with.
func TestLinkRecordedLayout(t *testing.T) {
	stored := time.Date(2025, 3, 2, 1, 0, 0, 0, time.UTC)
	l := audit.NewLink(audit.GenesisHash, 7, stored, "axis.doc.a.b", []byte("x"))
	tests := []struct {
		name     string
		recorded time.Time
		prefix   string
		at       time.Time
	}{
		{"none", time.Time{}, "docaxis-audit-link/1\n7\n", stored},
		{"earlier", stored.Add(-30 * time.Hour), "docaxis-audit-link/2\n7\n2025-03-02T01:00:00Z\n2025-02-28T19:00:00Z\n", stored.Add(-30 * time.Hour)},
		{"same as stored", stored, "docaxis-audit-link/1\n", stored},
		{"after stored", stored.Add(time.Hour), "docaxis-audit-link/1\n", stored},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := l.WithRecorded(tt.recorded)
			if !strings.HasPrefix(r.HashInput(), tt.prefix) || !r.Valid() || !r.RecordedAt().Equal(tt.at) {
				t.Fatalf("input %q valid %v at %s", r.HashInput(), r.Valid(), r.RecordedAt())
			}
			j, _ := json.Marshal(r)
			if strings.Contains(string(j), "recorded") != (tt.prefix[19] == '2') {
				t.Fatalf("JSON %s", j)
			}
		})
	}
}
