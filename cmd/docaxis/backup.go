package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"filippo.io/age"

	"github.com/docaxis/docaxis/broker/audit"
	"github.com/docaxis/docaxis/broker/backup"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/docaxis/docaxis/storage"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
)

var backupFlags struct {
	out            string
	json           bool
	recipients     []string
	recipientsFile string
	identities     []string
	ca             string
}

var backupCmd = &cobra.Command{
	Use:   "backup --out FILE",
	Short: "back up the running bus: record, buckets, attachments, CA, keys and credentials",
	Long: `Back up the running bus into one archive: a snapshot of every stream (the
record, the quarantine, the audit chain, every bucket, the embedded
attachment store, each mailbox's position), the objects of the S3 store with
--s3, and the home's CA, keys and credentials, with a manifest of SHA-256
digests, signed by the bus's audit key. Run it on the bus's machine with the
bus's home: the archive holds private keys (it is written with mode 0600;
keep it as safe as the home).

With --recipient (an age public key, "age1...", from 'docaxis backup keygen'
or age-keygen) or --recipients-file, the archive is encrypted to those
recipients, so a copy kept away from the bus gives nothing away: keep the
identity (the private key file) off the bus's machine, and give it to
restore with --identity.

Restore with: docaxis restore FILE --home NEW_HOME [--identity KEY_FILE]
[--ca CA_CERT], where CA_CERT is the bus's <home>/ca/ca.crt kept apart from
the backups: the archive must then be that bus's.`,
	Args: cobra.NoArgs,
	RunE: runBackup,
}

var backupVerifyCmd = &cobra.Command{
	Use:   "verify FILE",
	Short: "check a backup without restoring it",
	Args:  cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		ids, err := backupIdentities()
		if err != nil {
			return err
		}
		f, err := backup.Open(args[0], ids...)
		if err != nil {
			return fmt.Errorf("%s: %w", args[0], identityHint(err))
		}
		defer f.Close()
		m, err := backup.Verify(f)
		if err != nil {
			return fmt.Errorf("%s: %w", args[0], err)
		}
		ca, err := backupTrustCA()
		if err != nil {
			return err
		}
		if ca != nil {
			if err := m.CheckSigner(ca); err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
		}
		return printBackupSummary(cmd, "verified", args[0], m)
	},
}

var backupKeygenCmd = &cobra.Command{
	Use:   "keygen --out FILE",
	Short: "make an age key pair for encrypted backups: the identity to FILE, the recipient on stdout",
	Long: `Make an age X25519 key pair for 'docaxis backup --recipient'. The identity
(private key) is written to --out with mode 0600 and must not exist; the
recipient (public key, "age1...") is printed. Make it where the backups are
kept or on the operator's machine, not on the bus's: whoever holds the
identity can read every backup encrypted to it. Files of age-keygen work
the same.`,
	Args: cobra.NoArgs,
	RunE: runBackupKeygen,
}

func runBackupKeygen(cmd *cobra.Command, _ []string) error {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return fmt.Errorf("generate key: %w", err)
	}
	f, err := os.OpenFile(backupFlags.out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	_, werr := fmt.Fprintf(f, "# created: %s by docaxis backup keygen\n# public key: %s\n%s\n",
		time.Now().UTC().Format(time.RFC3339), id.Recipient(), id)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(backupFlags.out)
		return fmt.Errorf("--out: %w", werr)
	}
	fmt.Fprintln(cmd.OutOrStdout(), id.Recipient())
	return nil
}

// backupRecipients reads --recipient and --recipients-file.
func backupRecipients() ([]age.Recipient, error) {
	var rs []age.Recipient
	for _, s := range backupFlags.recipients {
		r, err := age.ParseX25519Recipient(s)
		if err != nil {
			return nil, fmt.Errorf("--recipient %q: %w (want an age public key, age1...)", s, err)
		}
		rs = append(rs, r)
	}
	if backupFlags.recipientsFile != "" {
		f, err := os.Open(backupFlags.recipientsFile)
		if err != nil {
			return nil, fmt.Errorf("--recipients-file: %w", err)
		}
		defer f.Close()
		more, err := age.ParseRecipients(f)
		if err != nil {
			return nil, fmt.Errorf("--recipients-file %s: %w", backupFlags.recipientsFile, err)
		}
		rs = append(rs, more...)
	}
	return rs, nil
}

// backupSigner loads the bus's audit key from the home, which signs the
// archive's manifest.
func backupSigner() (*audit.Key, error) {
	ks, err := signing.OpenKeystore(flagHome)
	if err != nil {
		return nil, fmt.Errorf("backup: open the home's keys: %w", err)
	}
	ca, err := ks.CA()
	if err != nil {
		return nil, fmt.Errorf("backup: the home's CA: %w (run it on the bus's machine with --home)", err)
	}
	key, err := audit.OpenKey(filepath.Join(ks.Dir, "audit"), ca)
	if err != nil {
		return nil, fmt.Errorf("backup: the audit key that signs the archive: %w", err)
	}
	return key, nil
}

// backupTrustCA reads --ca: the CA of the bus an archive must come from.
func backupTrustCA() (*x509.Certificate, error) {
	if backupFlags.ca == "" {
		return nil, nil
	}
	b, err := os.ReadFile(backupFlags.ca)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	certs, err := signing.ParseCerts(b)
	if err != nil || len(certs) != 1 {
		return nil, fmt.Errorf("--ca %s: want one CA certificate (PEM): %v", backupFlags.ca, err)
	}
	return certs[0], nil
}

// identityHint names the flag when an archive is encrypted.
func identityHint(err error) error {
	if errors.Is(err, backup.ErrEncrypted) {
		return fmt.Errorf("%w (--identity FILE)", err)
	}
	return err
}

// backupIdentities reads the files of --identity.
func backupIdentities() ([]age.Identity, error) {
	var ids []age.Identity
	for _, path := range backupFlags.identities {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("--identity: %w", err)
		}
		more, err := age.ParseIdentities(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("--identity %s: %w", path, err)
		}
		ids = append(ids, more...)
	}
	return ids, nil
}

func init() {
	backupCmd.Flags().StringVar(&backupFlags.out, "out", "", "archive to write (must not exist)")
	_ = backupCmd.MarkFlagRequired("out")
	backupCmd.PersistentFlags().BoolVar(&backupFlags.json, "json", false, "print the summary as JSON")
	backupCmd.Flags().StringArrayVar(&backupFlags.recipients, "recipient", nil, "encrypt the archive to this age public key (age1...; repeat for several)")
	backupCmd.Flags().StringVar(&backupFlags.recipientsFile, "recipients-file", "", "encrypt the archive to the age public keys in FILE (one a line)")
	backupVerifyCmd.Flags().StringArrayVar(&backupFlags.identities, "identity", nil, "age identity (key file) that opens an encrypted archive")
	backupVerifyCmd.Flags().StringVar(&backupFlags.ca, "ca", "", "PEM file of the bus's CA (its <home>/ca/ca.crt, kept apart): the archive must be signed by that bus")
	backupKeygenCmd.Flags().StringVar(&backupFlags.out, "out", "", "file for the identity (must not exist)")
	_ = backupKeygenCmd.MarkFlagRequired("out")
	backupCmd.AddCommand(backupVerifyCmd)
	backupCmd.AddCommand(backupKeygenCmd)
	rootCmd.AddCommand(backupCmd)
}

func runBackup(cmd *cobra.Command, _ []string) error {
	ctx := cmd.Context()
	out := backupFlags.out
	if _, err := os.Stat(out); err == nil {
		return fmt.Errorf("--out %s exists: choose a new name", out)
	}
	recipients, err := backupRecipients()
	if err != nil {
		return err
	}
	auditKey, err := backupSigner()
	if err != nil {
		return err
	}
	creds, err := adminCreds()
	if err != nil {
		return err
	}
	if creds == "" && flagCreds != "" {
		return errors.New("backup needs the bus's home (its own credentials and keys), not an agency's credentials: run it on the bus's machine with --home")
	}
	opts := []nats.Option{nats.Name("docaxis backup"), nats.Timeout(5 * time.Second)}
	if creds != "" {
		opts = append(opts, nats.UserCredentials(creds))
	}
	opts = append(opts, homeNATSOptions()...)
	nc, err := nats.Connect(flagServer, opts...)
	if err != nil {
		return fmt.Errorf("connect to the bus at %s: %w (is 'docaxis serve' running?)", flagServer, err)
	}
	defer nc.Close()
	var store storage.Store
	if flagS3 != "" {
		if store, err = openS3(ctx); err != nil {
			return err
		}
	}
	// Written under a temporary name and renamed when complete, so that a
	// backup cut short never looks like one.
	tmp := out + ".partial"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bar := newGrowingBar(cmd, "backup", backupFlags.json)
	m, err := backup.Write(ctx, f, backup.Source{Conn: nc, Home: flagHome, Store: store, TempDir: filepath.Dir(out),
		Version: buildInfo().Version, Progress: bar, Recipients: recipients,
		Signer: auditKey.Signer, SignerChain: auditKey.Chain})
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	ok = true
	return printBackupSummary(cmd, "backup", out, m)
}

type backupSummary struct {
	Action     string    `json:"action"`
	File       string    `json:"file"`
	Bytes      int64     `json:"bytes"`
	Format     int       `json:"format"`
	Created    time.Time `json:"created"`
	Version    string    `json:"version,omitempty"`
	RecordSeq  uint64    `json:"record_seq"`
	RecordTime time.Time `json:"record_time"`
	Streams    int       `json:"streams"`
	Messages   uint64    `json:"messages"`
	Entries    int       `json:"entries"`
	Encrypted  bool      `json:"encrypted"`
	// SignedBy is the SHA-256 of the certificate of the audit key that
	// signed the manifest; SignerCA of the CA that issued it (the CA is
	// trusted only with --ca).
	SignedBy string `json:"signed_by,omitempty"`
	SignerCA string `json:"signer_ca,omitempty"`
	Home     string `json:"home,omitempty"`
}

func printBackupSummary(cmd *cobra.Command, action, file string, m *backup.Manifest) error {
	s := backupSummary{Action: action, File: file, Format: m.Format, Created: m.Created, Version: m.Version,
		RecordSeq: m.RecordSeq, RecordTime: m.RecordTime, Streams: len(m.Streams), Entries: len(m.Entries)}
	if fi, err := os.Stat(file); err == nil {
		s.Bytes = fi.Size()
	}
	s.Encrypted, _ = backup.IsEncrypted(file)
	if len(m.SignedBy) > 0 {
		s.SignedBy = envelope.Fingerprint(m.SignedBy[0])
		s.SignerCA = envelope.Fingerprint(m.SignedBy[len(m.SignedBy)-1])
	}
	for _, st := range m.Streams {
		s.Messages += st.Messages
	}
	if action == "restored" {
		s.Home = flagHome
	}
	if backupFlags.json {
		return printJSON(cmd, s)
	}
	enc := ""
	if s.Encrypted {
		enc = " (encrypted)"
	}
	if s.SignedBy != "" {
		enc += fmt.Sprintf(", signed by the audit key of CA %s", s.SignerCA)
	} else {
		enc += ", not signed"
	}
	_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s %s: %s%s, record through sequence %d (%s), %d streams, %d messages, %d entries\n",
		action, file, human(s.Bytes), enc, s.RecordSeq, s.RecordTime.Format(time.RFC3339), s.Streams, s.Messages, s.Entries)
	return err
}

// newGrowingBar draws progress on a terminal for a transfer whose total
// grows as it goes (objects are counted as they are listed).
func newGrowingBar(cmd *cobra.Command, name string, jsonOut bool) func(done, total int64) {
	if jsonOut || !isTerminal(cmd.ErrOrStderr()) {
		return nil
	}
	p := &progress{w: cmd.ErrOrStderr(), name: name, start: time.Now()}
	return func(done, total int64) {
		p.mu.Lock()
		p.size = max(total, 1)
		p.mu.Unlock()
		p.update(done)
	}
}
