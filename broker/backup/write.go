package backup

import (
	"archive/tar"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"filippo.io/age"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/storage"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// recordStream is the record: the point in time of a backup.
const recordStream = record.Stream

// derivedStreams are written from the record (after it): snapshotted
// before it so that they never hold what the restored record lacks.
// Every other stream (directory, attachment access, attachments, tokens)
// is something the record depends on and is snapshotted after it.
var derivedStreams = map[string]bool{
	record.AuditStream:                     true, // the audit chain links records already there
	record.QuarantineStream:                true, // what could not be processed
	record.KVStream(record.TrackBucket):    true, // rebuilt from the record on restore anyway
	record.KVStream(record.IDsBucket):      true, // the tracker binds ids of verified copies
	record.KVStream(record.ReceivedBucket): true, // receivers record what they handled
}

// runtimeStreams belong to the running processes, not to the bus's data:
// a restored lease would make the restored bus wait for a holder that is
// not there (the audit chainer's, broker/lease). Serve makes them again.
var runtimeStreams = map[string]bool{
	record.KVStream(record.LeaseBucket): true,
}

// Source is the bus to back up.
type Source struct {
	// Conn is connected to the bus with its own (administrator)
	// credentials: it snapshots every stream of the account.
	Conn *nats.Conn
	// Home is the bus's home; everything but its data/ directory (the
	// embedded server's storage, which the snapshots hold) is copied.
	Home string
	// Store, when set, is an external attachment store (S3) whose objects
	// are copied too. The embedded store is a stream and needs nothing.
	Store storage.Store
	// TempDir spools each snapshot (its size must be known before it is
	// written to the archive). Default os.TempDir(); put it beside the
	// archive for large buses.
	TempDir string
	// Version of docaxis, recorded in the manifest.
	Version string
	// Progress, when set, is called with the bytes done and the bytes
	// expected so far (the total grows as objects are listed).
	Progress func(done, total int64)
	// Recipients, when set, are who the archive is encrypted to
	// (encrypt.go); restoring it then needs one of their identities.
	Recipients []age.Recipient
	// Signer, with its certificate chain SignerChain, signs the manifest:
	// the bus's audit key (signature.go). Nil writes an unsigned archive
	// of format 1.
	Signer      crypto.Signer
	SignerChain []*x509.Certificate
}

// Write writes a backup of the running bus to w and returns its manifest.
func Write(ctx context.Context, w io.Writer, src Source) (*Manifest, error) {
	js, err := jetstream.New(src.Conn)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	var enc io.WriteCloser
	if len(src.Recipients) > 0 {
		if enc, err = encryptTo(w, src.Recipients); err != nil {
			return nil, err
		}
		w = enc
	}
	now := time.Now().UTC()
	bw := &writer{tw: tar.NewWriter(w), now: now, progress: src.Progress}
	format := 1
	if src.Signer != nil {
		format = signedFormat
	}
	m := &Manifest{Format: format, Created: now, Version: src.Version}

	var infos []*jetstream.StreamInfo
	lister := js.ListStreams(ctx)
	for si := range lister.Info() {
		if !runtimeStreams[si.Config.Name] {
			infos = append(infos, si)
		}
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("backup: list streams: %w", err)
	}
	if !slices.ContainsFunc(infos, func(si *jetstream.StreamInfo) bool { return si.Config.Name == recordStream }) {
		return nil, fmt.Errorf("backup: the bus has no stream %s (is this a docaxis bus, and these its credentials?)", recordStream)
	}
	slices.SortFunc(infos, func(a, b *jetstream.StreamInfo) int {
		if d := streamRank(a.Config.Name) - streamRank(b.Config.Name); d != 0 {
			return d
		}
		return strings.Compare(a.Config.Name, b.Config.Name)
	})
	for _, si := range infos {
		bw.total.Add(int64(si.State.Bytes))
	}
	homeFiles, err := listHome(src.Home)
	if err != nil {
		return nil, err
	}
	for _, f := range homeFiles {
		bw.total.Add(f.size)
	}

	hdr, _ := json.Marshal(header{Format: format, Created: now, Tool: "docaxis " + src.Version, Sealed: true, Signed: src.Signer != nil})
	if err := bw.raw(headerName, hdr); err != nil {
		return nil, err
	}
	for _, f := range homeFiles {
		if err := bw.addFile(homePrefix+filepath.ToSlash(f.rel), f.path, f.mode); err != nil {
			return nil, err
		}
	}
	for _, si := range infos {
		st, err := bw.addSnapshot(ctx, src.Conn, si, src.TempDir)
		if err != nil {
			return nil, err
		}
		m.Streams = append(m.Streams, st)
		if st.Name == recordStream {
			m.RecordSeq, m.RecordTime = st.LastSeq, st.TakenAt
		}
	}
	if src.Store != nil {
		if err := bw.addObjects(ctx, src.Store); err != nil {
			return nil, err
		}
	}
	m.Entries = bw.entries
	mb, err := seal(m)
	if err != nil {
		return nil, fmt.Errorf("backup: manifest: %w", err)
	}
	if src.Signer != nil {
		sig, err := signManifest(mb, src.Signer, src.SignerChain)
		if err != nil {
			return nil, fmt.Errorf("backup: sign the manifest: %w", err)
		}
		if err := bw.raw(signatureName, sig); err != nil {
			return nil, err
		}
		m.SignedBy = src.SignerChain
	}
	if err := bw.raw(manifestName, mb); err != nil {
		return nil, err
	}
	if err := bw.tw.Close(); err != nil {
		return nil, fmt.Errorf("backup: finish archive: %w", err)
	}
	if enc != nil {
		if err := enc.Close(); err != nil { // the last, marked chunk
			return nil, fmt.Errorf("backup: finish encrypted archive: %w", err)
		}
	}
	bw.report()
	return m, nil
}

func streamRank(name string) int {
	switch {
	case derivedStreams[name]:
		return 0
	case name == recordStream:
		return 1
	}
	return 2
}

type homeFile struct {
	path, rel string
	size      int64
	mode      fs.FileMode
}

// listHome lists the regular files of home outside data/.
func listHome(home string) ([]homeFile, error) {
	var out []homeFile
	err := filepath.WalkDir(home, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(home, path)
		if d.IsDir() {
			if rel == "data" {
				return filepath.SkipDir // the embedded server's storage: in the snapshots
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil // sockets, links: not state
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, homeFile{path: path, rel: rel, size: fi.Size(), mode: fi.Mode().Perm()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("backup: read home %s: %w", home, err)
	}
	return out, nil
}

// writer writes entries to the tar, hashing each and counting progress.
type writer struct {
	tw       *tar.Writer
	now      time.Time
	entries  []Entry
	done     atomic.Int64
	total    atomic.Int64
	progress func(done, total int64)
}

func (bw *writer) report() {
	if bw.progress != nil {
		bw.progress(bw.done.Load(), max(bw.total.Load(), bw.done.Load()))
	}
}

// raw writes an entry that is not listed: the header and the manifest.
func (bw *writer) raw(name string, b []byte) error {
	if err := bw.tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: bw.now, Typeflag: tar.TypeReg}); err != nil {
		return fmt.Errorf("backup: write %s: %w", name, err)
	}
	if _, err := bw.tw.Write(b); err != nil {
		return fmt.Errorf("backup: write %s: %w", name, err)
	}
	return nil
}

// add writes one entry of size bytes from r. counted, when set, says how
// many source bytes the entry stands for (a snapshot is compressed).
func (bw *writer) add(name string, mode fs.FileMode, size int64, r io.Reader, h hash.Hash) error {
	if err := bw.tw.WriteHeader(&tar.Header{Name: name, Mode: int64(mode), Size: size, ModTime: bw.now, Typeflag: tar.TypeReg}); err != nil {
		return fmt.Errorf("backup: write %s: %w", name, err)
	}
	if h == nil {
		h = sha256.New()
		r = io.TeeReader(r, h)
	}
	n, err := io.Copy(bw.tw, &countingReader{r: r, bw: bw})
	if err != nil {
		return fmt.Errorf("backup: write %s: %w", name, err)
	}
	if n != size {
		return fmt.Errorf("backup: %s changed while written: %d bytes, expected %d", name, n, size)
	}
	bw.entries = append(bw.entries, Entry{Name: name, Size: size, SHA256: hex.EncodeToString(h.Sum(nil)), Mode: uint32(mode)})
	return nil
}

func (bw *writer) addFile(name, path string, mode fs.FileMode) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return bw.add(name, mode, fi.Size(), f, nil)
}

// addSnapshot spools the stream's snapshot to a temporary file (hashing
// it), then copies it into the archive.
func (bw *writer) addSnapshot(ctx context.Context, nc *nats.Conn, si *jetstream.StreamInfo, tmpDir string) (Stream, error) {
	name := si.Config.Name
	if !validStreamName(name) {
		return Stream{}, fmt.Errorf("backup: stream name %q cannot be restored", name)
	}
	tmp, err := os.CreateTemp(tmpDir, "docaxis-snapshot-*")
	if err != nil {
		return Stream{}, fmt.Errorf("backup: spool snapshot of %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	base := bw.done.Load()
	spool := &progressWriter{w: io.MultiWriter(tmp, h), fn: func(n int64) {
		// Snapshots are compressed: count them against the stream's
		// size, at most.
		bw.done.Store(base + min(n, int64(si.State.Bytes)))
		bw.report()
	}}
	taken := time.Now().UTC()
	cfg, state, err := snapshotStream(ctx, nc, name, spool)
	if err != nil {
		return Stream{}, fmt.Errorf("backup: %w", err)
	}
	var st struct {
		Msgs     uint64 `json:"messages"`
		FirstSeq uint64 `json:"first_seq"`
		LastSeq  uint64 `json:"last_seq"`
	}
	if err := json.Unmarshal(state, &st); err != nil {
		return Stream{}, fmt.Errorf("backup: state of %s: %w", name, err)
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return Stream{}, fmt.Errorf("backup: %w", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return Stream{}, fmt.Errorf("backup: %w", err)
	}
	bw.done.Store(base)
	bw.total.Add(size - int64(si.State.Bytes)) // from now on count archive bytes
	entry := streamPrefix + name + ".snap"
	// The spool was hashed on the way in: the archive holds its bytes.
	if err := bw.add(entry, 0o600, size, tmp, h); err != nil {
		return Stream{}, err
	}
	return Stream{Name: name, Entry: entry, Config: cfg, State: state, Messages: st.Msgs, FirstSeq: st.FirstSeq, LastSeq: st.LastSeq, TakenAt: taken}, nil
}

// addObjects copies every object of an external store, checking each
// against its content address on the way.
func (bw *writer) addObjects(ctx context.Context, store storage.Store) error {
	var objs []storage.Object
	if err := store.List(ctx, func(o storage.Object) error {
		objs = append(objs, o)
		bw.total.Add(o.Size)
		return nil
	}); err != nil {
		return fmt.Errorf("backup: list attachments: %w", err)
	}
	for _, o := range objs {
		if _, err := storage.CheckKey(o.Key); err != nil {
			return fmt.Errorf("backup: attachment store holds %q: %w", o.Key, err)
		}
		rc, obj, err := store.Get(ctx, o.Key)
		if errors.Is(err, storage.ErrNotFound) {
			continue // removed (retention) since it was listed
		}
		if err != nil {
			return fmt.Errorf("backup: read attachment %s: %w", o.Key, err)
		}
		err = bw.add(objectPrefix+o.Key, 0o600, obj.Size, storage.NewVerifyingReader(rc, o.Key, obj.Size, obj.SHA256), nil)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

type countingReader struct {
	r  io.Reader
	bw *writer
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.bw.done.Add(int64(n))
	c.bw.report()
	return n, err
}

type progressWriter struct {
	w  io.Writer
	n  int64
	fn func(int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	p.fn(p.n)
	return n, err
}

// validStreamName: a stream name goes into API subjects on restore.
func validStreamName(name string) bool {
	if name == "" || len(name) > 255 {
		return false
	}
	for _, r := range name {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
