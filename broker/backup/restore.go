package backup

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"

	"github.com/docaxis/docaxis/broker/auth"
	"github.com/docaxis/docaxis/broker/bus"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/storage"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// trackerDurable is the tracker's consumer on the record (broker/names.go).
// Removing it makes the first serve rebuild tracking from the record.
const trackerDurable = record.TrackerDurable

// Target is where a backup is restored.
type Target struct {
	// Home is the new home: missing or empty.
	Home string
	// Store receives the objects of an external attachment store (S3)
	// when the backup holds any; nil puts them in the restored bus's
	// embedded store.
	Store storage.Store
	// Progress, when set, is called with the bytes restored and the total.
	Progress func(done, total int64)
	// Identities open an encrypted archive (Open).
	Identities []age.Identity
	// TrustCA, when set, is the CA of the bus the archive must come from:
	// an archive not signed by that bus's audit key, or that would restore
	// another CA, is refused before anything is written
	// (Manifest.CheckSigner).
	TrustCA *x509.Certificate
}

// Restore checks the archive at path whole (Verify), then writes it into
// a fresh home: the home's files, every stream through an embedded server
// started on the home as serve starts it, and the attachments. Nothing is
// written before the archive has verified; if writing fails midway, what
// was written is removed.
func Restore(ctx context.Context, path string, t Target) (*Manifest, error) {
	created, err := checkEmptyHome(t.Home)
	if err != nil {
		return nil, err
	}
	// Read twice: checked whole first, then written. An encrypted archive
	// is decrypted again for the second pass, which checks every entry
	// against the manifest again (a file changed in between is refused).
	f, err := Open(path, t.Identities...)
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w; nothing was written", path, err)
	}
	m, err := Verify(f)
	f.Close()
	if err == nil && t.TrustCA != nil {
		err = m.CheckSigner(t.TrustCA)
	}
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w; nothing was written", path, err)
	}
	if f, err = Open(path, t.Identities...); err != nil {
		return nil, fmt.Errorf("restore %s: %w; nothing was written", path, err)
	}
	defer f.Close()
	if err := restore(ctx, f, m, t); err != nil {
		cleanHome(t.Home, created)
		return nil, fmt.Errorf("restore %s into %s: %w; what was written is removed", path, t.Home, err)
	}
	return m, nil
}

// checkEmptyHome refuses a home that holds anything; it reports whether
// the home is missing (restore creates it).
func checkEmptyHome(home string) (created bool, err error) {
	if home == "" {
		return false, errors.New("restore: no home given")
	}
	entries, err := os.ReadDir(home)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("restore: %w", err)
	}
	if len(entries) > 0 {
		return false, fmt.Errorf("%w: %s holds %d entries (%s...): restore into a new directory", ErrHomeNotEmpty, home, len(entries), entries[0].Name())
	}
	return false, nil
}

func cleanHome(home string, created bool) {
	if created {
		_ = os.RemoveAll(home)
		return
	}
	entries, _ := os.ReadDir(home)
	for _, e := range entries {
		_ = os.RemoveAll(filepath.Join(home, e.Name()))
	}
}

// restorer holds the embedded server of the home being restored.
type restorer struct {
	t     Target
	m     *Manifest
	srv   *bus.Server
	nc    *nats.Conn
	js    jetstream.JetStream
	store storage.Store
	done  int64
	total int64
}

func restore(ctx context.Context, r io.Reader, m *Manifest, t Target) error {
	if err := os.MkdirAll(t.Home, 0o700); err != nil {
		return err
	}
	rs := &restorer{t: t, m: m}
	defer rs.close()
	listed := map[string]Entry{}
	for _, e := range m.Entries {
		listed[e.Name] = e
		rs.total += e.Size
	}
	streams := map[string]Stream{}
	for _, s := range m.Streams {
		streams[s.Entry] = s
	}
	restored := map[string]bool{}
	tr := tar.NewReader(r)
	for {
		th, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return readErr(err, "read the archive")
		}
		e, ok := listed[th.Name]
		if !ok {
			continue // header and manifest
		}
		if restored[th.Name] {
			return fmt.Errorf("%w: %s twice (the archive changed while restored)", ErrDamaged, th.Name)
		}
		restored[th.Name] = true
		h := sha256.New()
		src := &hashCounter{r: io.TeeReader(tr, h), rs: rs}
		switch {
		case strings.HasPrefix(th.Name, homePrefix):
			err = rs.writeHomeFile(strings.TrimPrefix(th.Name, homePrefix), e, src)
		case strings.HasPrefix(th.Name, streamPrefix):
			err = rs.restoreStream(ctx, streams[th.Name], src)
		case strings.HasPrefix(th.Name, objectPrefix):
			err = rs.putObject(ctx, strings.TrimPrefix(th.Name, objectPrefix), e, src)
		}
		if err != nil {
			return err
		}
		// The archive verified a moment ago; the bytes must be the same
		// now (the file could have been changed in between).
		if _, err := io.Copy(io.Discard, src); err != nil {
			return readErr(err, "read "+th.Name)
		}
		if sum := hex.EncodeToString(h.Sum(nil)); sum != e.SHA256 {
			return fmt.Errorf("%w: %s changed while restored (SHA-256 %s, manifest %s)", ErrDamaged, th.Name, sum, e.SHA256)
		}
	}
	// The archive verified whole; read again, it may have been cut
	// since: a home without some of its streams is no restore.
	for _, e := range m.Entries {
		if !restored[e.Name] {
			return fmt.Errorf("%w: %s is listed in the manifest but was not there when restored (the archive changed while restored)", ErrTruncated, e.Name)
		}
	}
	if err := rs.start(); err != nil {
		return err
	}
	// Tracking is derived from the record: the first serve rebuilds it,
	// verifying every message of the restored record again.
	if err := rs.js.DeleteConsumer(ctx, recordStream, trackerDurable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("remove the tracker's consumer so that serve rebuilds tracking: %w", err)
	}
	return nil
}

func (rs *restorer) report() {
	if rs.t.Progress != nil {
		rs.t.Progress(rs.done, rs.total)
	}
}

func (rs *restorer) writeHomeFile(rel string, e Entry, r io.Reader) error {
	if rs.srv != nil {
		return fmt.Errorf("%w: home file %s after the streams", ErrDamaged, rel)
	}
	path := filepath.Join(rs.t.Home, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	// Keys and credentials stay private whatever the archive says.
	mode := fs.FileMode(e.Mode).Perm() &^ 0o022
	if mode == 0 {
		mode = 0o600
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode|0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// start runs an embedded server on the home as serve does: its data
// directory and, when the home has a NATS authority, its accounts, so that
// the streams land in the account serve uses.
func (rs *restorer) start() error {
	if rs.srv != nil {
		return nil
	}
	authDir := filepath.Join(rs.t.Home, "nats")
	var a *auth.Authority
	if _, err := os.Stat(filepath.Join(authDir, "account.nk")); err == nil {
		if a, err = auth.Open(authDir); err != nil {
			return err
		}
	}
	cfg := bus.ServerConfig{Dir: filepath.Join(rs.t.Home, "data"), Listen: "127.0.0.1:0", Name: "docaxis-restore"}
	var opts []nats.Option
	if a != nil {
		cfg.Configure = func(o *server.Options) error { return a.Configure(o) }
		creds, err := a.AdminCreds()
		if err != nil {
			return err
		}
		opts = append(opts, nats.UserCredentials(creds))
	}
	srv, err := bus.StartServer(cfg)
	if err != nil {
		return err
	}
	rs.srv = srv
	if rs.nc, err = nats.Connect(srv.ClientURL(), append(opts, nats.Name("docaxis restore"))...); err != nil {
		return fmt.Errorf("connect to the restore server: %w", err)
	}
	rs.js, err = jetstream.New(rs.nc)
	return err
}

func (rs *restorer) close() {
	if rs.nc != nil {
		rs.nc.Close()
	}
	if rs.srv != nil {
		rs.srv.Shutdown()
	}
}

func (rs *restorer) restoreStream(ctx context.Context, s Stream, r io.Reader) error {
	if err := rs.start(); err != nil {
		return err
	}
	// One embedded server: a backup of a cluster (replicas 3) is
	// restored with one replica.
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(s.Config, &cfg); err != nil {
		return fmt.Errorf("%w: configuration of stream %s: %w", ErrDamaged, s.Name, err)
	}
	cfg["num_replicas"] = json.RawMessage("1")
	delete(cfg, "placement")
	conf, _ := json.Marshal(cfg)
	return restoreStream(ctx, rs.nc, s.Name, conf, s.State, r)
}

func (rs *restorer) putObject(ctx context.Context, key string, e Entry, r io.Reader) error {
	if err := rs.start(); err != nil {
		return err
	}
	if rs.store == nil {
		rs.store = rs.t.Store
		if rs.store == nil {
			st, err := storage.NewJetStream(ctx, rs.js, storage.JetStreamConfig{})
			if err != nil {
				return err
			}
			rs.store = st
		}
	}
	obj, err := rs.store.Put(ctx, r, storage.PutOptions{Size: e.Size})
	if err != nil {
		return fmt.Errorf("restore attachment %s: %w", key, err)
	}
	if obj.Key != key {
		return fmt.Errorf("%w: attachment %s holds the bytes of %s", ErrDamaged, key, obj.Key)
	}
	return nil
}

type hashCounter struct {
	r  io.Reader
	rs *restorer
}

func (h *hashCounter) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.rs.done += int64(n)
	h.rs.report()
	return n, err
}
