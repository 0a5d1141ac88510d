package federation_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/federation"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go"
)

// A trace verifies only as it was signed: for these bytes, this copy, in
// this order, each entry by a certificate of its own bus's CA.
func TestTraceTampering(t *testing.T) {
	cas := map[string]*signing.CA{}
	ids := map[string]*federation.BusIdentity{}
	for _, bus := range []string{"HN", "VN", "DN"} {
		ca, err := signing.NewCA("CA "+bus, time.Hour*24)
		if err != nil {
			t.Fatal(err)
		}
		id, err := federation.LoadBusIdentity(filepath.Join(t.TempDir(), bus), bus, ca)
		if err != nil {
			t.Fatal(err)
		}
		cas[bus], ids[bus] = ca, id
	}
	trust := func(bus string) *signing.Trust {
		if ca := cas[bus]; ca != nil {
			return signing.NewTrust(ca.Cert)
		}
		return nil
	}
	raw := []byte("signed envelope bytes")
	sign := func(copyID string, buses ...string) nats.Header {
		h := nats.Header{}
		var hops []federation.Hop
		for _, b := range buses {
			hop, err := federation.AppendHop(h, ids[b], hops, time.Now(), "env", copyID, raw)
			if err != nil {
				t.Fatal(err)
			}
			hops = append(hops, hop)
		}
		return h
	}
	good := sign("env.x", "HN", "VN", "DN")
	if hops, err := federation.VerifyTrace(good, raw, "env.x", trust); err != nil || len(hops) != 3 || !hops[2].Verified {
		t.Fatalf("good trace: %v %+v", err, hops)
	}
	swapped := nats.Header{federation.HeaderTrace: {good.Values(federation.HeaderTrace)[1], good.Values(federation.HeaderTrace)[0]}}
	for name, c := range map[string]struct {
		h      nats.Header
		raw    []byte
		copyID string
		want   error
	}{
		"other bytes":       {good, []byte("other bytes"), "env.x", federation.ErrTrace},
		"other copy":        {good, raw, "env.y", federation.ErrTrace},
		"reordered":         {swapped, raw, "env.x", federation.ErrTrace},
		"unknown bus":       {sign("env.x", "HN"), raw, "env.x", nil},
		"bad signature":     {nats.Header{federation.HeaderTrace: {good.Values(federation.HeaderTrace)[0] + "A"}}, raw, "env.x", federation.ErrTrace},
		"foreign bus chain": {nil, raw, "env.x", federation.ErrTrace},
	} {
		h := c.h
		tr := trust
		switch name {
		case "unknown bus":
			tr = func(bus string) *signing.Trust { return nil }
			c.want = federation.ErrUnknownBus
		case "foreign bus chain":
			// HN's entry checked against VN's CA.
			h = sign("env.x", "HN")
			tr = func(string) *signing.Trust { return signing.NewTrust(cas["VN"].Cert) }
		}
		if _, err := federation.VerifyTrace(h, c.raw, c.copyID, tr); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

// A receiving bus believes an origin's first trace entry only within the
// bound before the national's entry, or before its own clock where the
// national has not seen the copy yet.
func TestRecordedTime(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const outage = 72 * time.Hour
	hop := func(bus string, d time.Duration) federation.Hop { return federation.Hop{Bus: bus, At: now.Add(d)} }
	for name, c := range map[string]struct {
		hops []federation.Hop
		want time.Time
	}{
		"at the national, recorded a minute ago":     {[]federation.Hop{hop("HN", -time.Minute)}, now.Add(-time.Minute)},
		"at the national, link down two days":        {[]federation.Hop{hop("HN", -48*time.Hour)}, now.Add(-48 * time.Hour)},
		"at the national, dated back ten days":       {[]federation.Hop{hop("HN", -240*time.Hour)}, now.Add(-outage)},
		"at the national, dated in the future":       {[]federation.Hop{hop("HN", time.Hour)}, now},
		"at the destination, the national witnessed": {[]federation.Hop{hop("HN", -240*time.Hour), hop("VN", -100*time.Hour)}, now.Add(-100*time.Hour - outage)},
		"at the destination, within the bound":       {[]federation.Hop{hop("HN", -101*time.Hour), hop("VN", -100*time.Hour)}, now.Add(-101 * time.Hour)},
		"from the national itself":                   {[]federation.Hop{hop("VN", -240*time.Hour)}, now.Add(-240 * time.Hour)},
		// The origin's own second entry is no witness: dated back with the first.
		"at the national, two entries of the origin": {[]federation.Hop{hop("HN", -240*time.Hour), hop("HN", -239*time.Hour)}, now.Add(-outage)},
		"at the destination, two of the origin":      {[]federation.Hop{hop("HN", -240*time.Hour), hop("HN", -239*time.Hour), hop("VN", -time.Hour)}, now.Add(-time.Hour - outage)},
		"another member's entry is no witness":       {[]federation.Hop{hop("HN", -240*time.Hour), hop("SL", -239*time.Hour)}, now.Add(-outage)},
	} {
		if got := federation.RecordedTime(c.hops, "VN", now, outage); !got.Equal(c.want) {
			t.Errorf("%s: %s, want %s", name, got, c.want)
		}
	}
}
