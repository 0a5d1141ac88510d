package backup_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/auth"
	"github.com/docaxis/docaxis/broker/backup"
	"github.com/docaxis/docaxis/broker/bus"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	sender    = "000.00.00.G22"
	recipient = "000.00.00.H14"
)

func ctxT(t *testing.T) context.Context { return bustest.Context(t, 2*time.Minute) }

// busWithTraffic is a bus with authentication on which sender sent n
// envelopes (one with an attachment), recipient received them and
// accepted the first.
func busWithTraffic(t *testing.T, n int) (*bustest.Bus, []string, envelope.Attachment) {
	t.Helper()
	b := bustest.Start(t, bustest.WithAuth())
	b.AddAgency(sender, "Văn phòng Chính phủ")
	b.AddAgency(recipient, "UBND tỉnh")
	ctx := ctxT(t)
	s := b.Client(sender)
	var ids []string
	var att envelope.Attachment
	for i := range n {
		e := envelope.New(sender, []string{recipient}, "Công văn "+string(rune('A'+i)))
		var files []broker.File
		if i == 0 {
			files = append(files, broker.File{Name: "a.txt", MediaType: "text/plain", Size: 5, Reader: strings.NewReader("hello")})
		}
		if _, err := s.Send(ctx, e, files...); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
		if i == 0 {
			att = e.Attachments[0]
		}
	}
	r := b.Client(recipient)
	mb, err := r.Mailbox(ctx, recipient)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for got < n {
		k, err := mb.Fetch(ctx, n, time.Second, func(context.Context, *broker.Delivery) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		got += k
	}
	for _, id := range ids {
		if _, err := r.WaitState(ctx, id, recipient, envelope.StateDelivered); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Mark(ctx, recipient, ids[0], envelope.StateAccepted, broker.MarkOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WaitState(ctx, ids[0], recipient, envelope.StateAccepted); err != nil {
		t.Fatal(err)
	}
	return b, ids, att
}

// writeBackup backs up b into a file and returns its path.
func writeBackup(t *testing.T, b *bustest.Bus) string {
	t.Helper()
	return writeBackupTo(t, b)
}

// writeBackupTo backs up b into a file encrypted to recipients (none:
// plain) and returns its path.
func writeBackupTo(t *testing.T, b *bustest.Bus, recipients ...age.Recipient) string {
	t.Helper()
	return writeBackupWith(t, b, backup.Source{Recipients: recipients})
}

// writeBackupWith backs up b into a file with src's encryption and signer
// and returns its path.
func writeBackupWith(t *testing.T, b *bustest.Bus, src backup.Source) string {
	t.Helper()
	nc, err := nats.Connect(b.URL(), b.AdminOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	out := filepath.Join(t.TempDir(), "bus.tar")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var last, total int64
	src.Conn, src.Home, src.Version = nc, filepath.Join(b.Dir, "home"), "test"
	src.Progress = func(d, tot int64) { last, total = d, tot }
	m, err := backup.Write(ctxT(t), f, src)
	if err != nil {
		t.Fatal(err)
	}
	if m.RecordSeq == 0 || len(m.Streams) < 5 {
		t.Fatalf("manifest: record seq %d, %d streams", m.RecordSeq, len(m.Streams))
	}
	if last == 0 || last > total {
		t.Errorf("progress ended at %d of %d", last, total)
	}
	return out
}

// startRestored runs the bus on a restored home as serve does.
func startRestored(t *testing.T, home string) (*bus.Service, *nats.Conn, *signing.Trust) {
	t.Helper()
	a, err := auth.Open(filepath.Join(home, "nats"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := bus.StartServer(bus.ServerConfig{Dir: filepath.Join(home, "data"), Listen: "127.0.0.1:0",
		Configure: func(o *server.Options) error { return a.Configure(o) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	creds, err := a.AdminCreds()
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.ClientURL(), nats.UserCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ks, err := signing.OpenKeystore(home)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := ks.CACert()
	if err != nil {
		t.Fatal(err)
	}
	trust := signing.NewTrust(ca)
	svc, err := bus.StartService(ctxT(t), nc, bus.ServiceConfig{Trust: trust, Logger: bustest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Stop)
	return svc, nc, trust
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	b, ids, att := busWithTraffic(t, 5)
	ctx := ctxT(t)
	before := map[string]*broker.DocumentStatus{}
	for _, id := range ids {
		ds, err := b.Service.Client.Status(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		before[id] = ds
	}
	js, _ := jetstream.New(mustConn(t, b))
	rec, err := js.Stream(ctx, "AXIS")
	if err != nil {
		t.Fatal(err)
	}
	recState := rec.CachedInfo().State
	path := writeBackup(t, b)
	b.Stop()

	home := filepath.Join(t.TempDir(), "restored")
	m, err := backup.Restore(ctx, path, backup.Target{Home: home})
	if err != nil {
		t.Fatal(err)
	}
	if m.RecordSeq != recState.LastSeq {
		t.Errorf("record through %d, bus had %d", m.RecordSeq, recState.LastSeq)
	}
	for _, f := range []string{"ca/ca.key", "nats/account.nk", "agencies/" + sender + "/key.pem"} {
		fi, err := os.Stat(filepath.Join(home, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s restored with mode %v", f, fi.Mode())
		}
	}
	svc, nc, trust := startRestored(t, home)
	js2, _ := jetstream.New(nc)
	rec2, err := js2.Stream(ctx, "AXIS")
	if err != nil {
		t.Fatal(err)
	}
	if st := rec2.CachedInfo().State; st.Msgs != recState.Msgs || st.LastSeq != recState.LastSeq || !st.FirstTime.Equal(recState.FirstTime) {
		t.Errorf("record restored as %d msgs through %d (%v), was %d through %d (%v)", st.Msgs, st.LastSeq, st.FirstTime, recState.Msgs, recState.LastSeq, recState.FirstTime)
	}
	// Tracking is rebuilt from the record: wait for the last state.
	t.Log("restored bus started")
	if _, err := svc.Client.WaitState(ctx, ids[0], recipient, envelope.StateAccepted); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if id != ids[0] {
			if _, err := svc.Client.WaitState(ctx, id, recipient, envelope.StateDelivered); err != nil {
				t.Fatal(err)
			}
		}
		ds, err := svc.Client.Status(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if a, b := statesOf(before[id]), statesOf(ds); a != b {
			t.Errorf("%s: state %s after restore, %s before", id, b, a)
		}
	}
	// Sending resumes, and the recipient's mailbox kept its place: only
	// the new envelope is delivered.
	ks, _ := signing.OpenKeystore(home)
	a, _ := auth.Open(filepath.Join(home, "nats"))
	client := func(code string) *broker.Client {
		creds := filepath.Join(t.TempDir(), "c.creds")
		if err := a.AgencyCreds(code, creds); err != nil {
			t.Fatal(err)
		}
		c, err := broker.Connect(ctx, nc.ConnectedUrl(), broker.WithKeystore(ks), broker.WithTrust(trust), broker.WithAgencyCredentials(creds), broker.WithLogger(bustest.Logger()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	e := envelope.New(sender, []string{recipient}, "sau khi khôi phục")
	if _, err := client(sender).Send(ctx, e); err != nil {
		t.Fatal(err)
	}
	rcpt := client(recipient)
	mb, err := rcpt.Mailbox(ctx, recipient)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) == 0 {
		if _, err := mb.Fetch(ctx, 10, time.Second, func(_ context.Context, d *broker.Delivery) error {
			got = append(got, d.Envelope.ID)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 1 || got[0] != e.ID {
		t.Errorf("after restore the mailbox delivered %v, want only %s", got, e.ID)
	}
	// The attachment came back with the embedded store, and the
	// recipient may still read it.
	rc, err := rcpt.OpenAttachment(ctx, att)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if body, err := io.ReadAll(rc); err != nil || string(body) != "hello" {
		t.Errorf("attachment after restore: %q, %v", body, err)
	}
}

func mustConn(t *testing.T, b *bustest.Bus) *nats.Conn {
	nc, err := nats.Connect(b.URL(), b.AdminOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func statesOf(ds *broker.DocumentStatus) string {
	var out []string
	for _, r := range ds.Recipients {
		out = append(out, r.Recipient+"="+string(r.State))
	}
	return strings.Join(out, ",")
}

// entry is one entry of an archive, for tests that damage archives.
type entry struct {
	name string
	data []byte
}

func readEntries(t testing.TB, path string) []entry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []entry
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out = append(out, entry{h.Name, b})
	}
}

func tarOf(es []entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		_ = tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o600, Size: int64(len(e.data)), Typeflag: tar.TypeReg})
		_, _ = tw.Write(e.data)
	}
	_ = tw.Close()
	return buf.Bytes()
}

// editManifest rewrites the manifest (last entry) with fn, and seals it
// again (its SHA-256 over its bytes with the value as zeros), so that
// what fn changed is what is refused.
func editManifest(es []entry, fn func(m map[string]any)) []entry {
	out := append([]entry(nil), es...)
	last := &out[len(out)-1]
	var m map[string]any
	_ = json.Unmarshal(last.data, &m)
	fn(m)
	zeros := strings.Repeat("0", 64)
	m["sha256"] = zeros
	b, _ := json.Marshal(m)
	sum := sha256.Sum256(b)
	last.data = bytes.Replace(b, []byte(zeros), []byte(hex.EncodeToString(sum[:])), 1)
	return out
}

func index(es []entry, prefix string) int {
	for i, e := range es {
		if strings.HasPrefix(e.name, prefix) {
			return i
		}
	}
	return -1
}

// TestRestoreRefusesBadBackups: each is refused with its reason and
// nothing is written.
func TestRestoreRefusesBadBackups(t *testing.T) {
	b, _, _ := busWithTraffic(t, 2)
	good := writeBackup(t, b)
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	es := readEntries(t, good)
	snap := index(es, "streams/AXIS.snap")
	homeKey := index(es, "home/ca/ca.key")
	with := func(fn func([]entry) []entry) []byte {
		return tarOf(fn(append([]entry(nil), es...)))
	}
	cases := []struct {
		name string
		data []byte
		want error
		say  string
	}{
		{"empty file", nil, backup.ErrTruncated, "empty"},
		{"cut in half", raw[:len(raw)/2], backup.ErrTruncated, "cut off"},
		{"cut before the manifest", tarOf(es[:len(es)-1]), backup.ErrTruncated, "without its manifest"},
		{"cut at a block", raw[:len(raw)-2048], backup.ErrTruncated, ""},
		{"not a backup", tarOf([]entry{{"hello.txt", []byte("hi")}}), backup.ErrDamaged, "not a docaxis backup"},
		{"garbage", bytes.Repeat([]byte{0x5a}, 4096), backup.ErrDamaged, ""},
		{"newer format", with(func(es []entry) []entry {
			es[0].data = []byte(`{"format":99,"tool":"docaxis v9"}`)
			return es
		}), backup.ErrNewerFormat, "format 99"},
		{"snapshot byte flipped", with(func(es []entry) []entry {
			d := bytes.Clone(es[snap].data)
			d[len(d)/2] ^= 0xff
			es[snap].data = d
			return es
		}), backup.ErrDamaged, "streams/AXIS.snap"},
		{"key replaced", with(func(es []entry) []entry {
			es[homeKey].data = []byte("not the key")
			return es
		}), backup.ErrDamaged, "home/ca/ca.key"},
		{"snapshot missing", with(func(es []entry) []entry {
			return append(es[:snap:snap], es[snap+1:]...)
		}), backup.ErrTruncated, "streams/AXIS.snap"},
		{"entry not in the manifest", with(func(es []entry) []entry {
			n := len(es)
			return append(es[:n-1:n-1], entry{"home/extra.txt", []byte("x")}, es[n-1])
		}), backup.ErrDamaged, "not in the manifest"},
		{"path out of the home", with(func(es []entry) []entry {
			n := len(es)
			return append(es[:n-1:n-1], entry{"home/../../etc/cron.d/x", []byte("x")}, es[n-1])
		}), backup.ErrDamaged, "home file"},
		{"into the data directory", with(func(es []entry) []entry {
			n := len(es)
			return append(es[:n-1:n-1], entry{"home/data/jetstream/x", []byte("x")}, es[n-1])
		}), backup.ErrDamaged, "home file"},
		{"stream name with a wildcard", with(func(es []entry) []entry {
			return editManifest(es, func(m map[string]any) {
				m["streams"].([]any)[0].(map[string]any)["name"] = "AXIS.>"
			})
		}), backup.ErrDamaged, "stream name"},
		{"no record", with(func(es []entry) []entry {
			return editManifest(es, func(m map[string]any) {
				var keep []any
				for _, s := range m["streams"].([]any) {
					if s.(map[string]any)["name"] != "AXIS" {
						keep = append(keep, s)
					}
				}
				m["streams"] = keep
			})
		}), backup.ErrTruncated, "stream AXIS"},
		{"manifest and header disagree", with(func(es []entry) []entry {
			return editManifest(es, func(m map[string]any) { m["format"] = 2 })
		}), backup.ErrDamaged, "format"},
		{"entry after the manifest", with(func(es []entry) []entry {
			return append(es, entry{"home/late", []byte("x")})
		}), backup.ErrDamaged, "after the manifest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.tar")
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			home := filepath.Join(t.TempDir(), "home")
			_, err := backup.Restore(ctxT(t), path, backup.Target{Home: home})
			if !errors.Is(err, tc.want) {
				t.Fatalf("restore: %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.say) || !strings.Contains(err.Error(), "nothing was written") {
				t.Errorf("error %q does not say %q and that nothing was written", err, tc.say)
			}
			if _, err := os.Stat(home); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("home %s was created: %v", home, err)
			}
		})
	}

	t.Run("home not empty", func(t *testing.T) {
		home := t.TempDir()
		keep := filepath.Join(home, "ca.key")
		if err := os.WriteFile(keep, []byte("the operator's key"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := backup.Restore(ctxT(t), good, backup.Target{Home: home})
		if !errors.Is(err, backup.ErrHomeNotEmpty) {
			t.Fatalf("restore over a home: %v", err)
		}
		if b, _ := os.ReadFile(keep); string(b) != "the operator's key" {
			t.Errorf("the home's file was changed")
		}
		if entries, _ := os.ReadDir(home); len(entries) != 1 {
			t.Errorf("home holds %d entries after a refused restore", len(entries))
		}
	})
	t.Run("empty home is fine", func(t *testing.T) {
		home := t.TempDir()
		if _, err := backup.Restore(ctxT(t), good, backup.Target{Home: home}); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzVerify: no archive makes Verify panic or accept an entry whose
// name Write would not make.
func FuzzVerify(f *testing.F) {
	f.Add([]byte{})
	f.Add(tarOf([]entry{{"docaxis-backup.json", []byte(`{"format":1}`)}, {"manifest.json", []byte(`{"format":1,"streams":[{"name":"AXIS","entry":"streams/AXIS.snap","config":{},"state":{}}],"entries":[{"name":"streams/AXIS.snap","size":0,"sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}]}`)}, {"streams/AXIS.snap", nil}}))
	f.Add(tarOf([]entry{{"docaxis-backup.json", []byte(`{"format":1}`)}, {"home/../x", nil}, {"manifest.json", []byte(`{}`)}}))
	f.Add(tarOf([]entry{{"docaxis-backup.json", []byte(`{"format":2,"signed":true}`)}, {"home/ca/ca.crt", []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")}, {"manifest.jws", []byte("eyJhbGciOiJFUzI1NiJ9.e30.AAAA")}, {"manifest.json", []byte(`{"format":2,"streams":[{"name":"AXIS","entry":"streams/AXIS.snap","config":{},"state":{}}],"entries":[{"name":"streams/AXIS.snap","size":0,"sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}]}`)}, {"streams/AXIS.snap", nil}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := backup.Verify(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, e := range m.Entries {
			if strings.Contains(e.Name, "..") || strings.HasPrefix(e.Name, "home/data") {
				t.Fatalf("accepted entry %q", e.Name)
			}
		}
	})
}
