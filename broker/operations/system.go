package operations

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/signing"
)

// SystemSecretFile is the name of a system's shared secret for the
// compatibility API in its directory of the home.
const SystemSecretFile = "vxp.secret"

// SystemSecretPath is where the home keeps system id's shared secret.
func SystemSecretPath(ks *signing.Keystore, id string) string {
	return filepath.Join(ks.SystemDir(id), SystemSecretFile)
}

// SystemRequest is a document system to register.
type SystemRequest struct {
	ID, Name string
	// KeyType of a key issued for it (signing.KeyType; "" the default).
	KeyType string
}

// SystemResult is what AddSystem registered.
type SystemResult struct {
	System   broker.System
	Identity *signing.Identity
	// Creds is the path of its NATS credentials ("" on a bus without
	// authentication).
	Creds string
}

// AddSystem registers a document system (docaxis system add): its key and
// certificate (the home's, or issued by its CA), its directory entry and
// mailbox, its NATS credentials and its shared secret for the
// compatibility API.
func (o *Operator) AddSystem(ctx context.Context, req SystemRequest) (*SystemResult, error) {
	id := req.ID
	if err := broker.CheckSystemID(id); err != nil {
		return nil, err
	}
	sid, err := o.ks.SystemIdentity(id)
	if errors.Is(err, signing.ErrNoIdentity) {
		ca, err := o.ks.CA()
		if err != nil {
			return nil, err
		}
		if sid, err = ca.IssueSystem(id, req.Name, signing.IssueOptions{KeyType: signing.KeyType(req.KeyType)}); err != nil {
			return nil, err
		}
		if err := o.ks.SaveSystem(sid); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	s := broker.System{ID: id, Name: req.Name, Certificate: string(signing.EncodeCerts(sid.Chain...))}
	if err := o.c.RegisterSystem(ctx, s); err != nil {
		return nil, err
	}
	res := &SystemResult{System: s, Identity: sid}
	if o.auth != nil {
		res.Creds = SystemCredsPath(o.ks, id)
		if err := o.auth.SystemCreds(id, res.Creds); err != nil {
			return nil, fmt.Errorf("registered system %s, but issuing its NATS credentials failed: %w", id, err)
		}
	}
	if _, err := SystemSecret(o.ks, id, false); err != nil {
		return nil, err
	}
	return res, nil
}

// SystemSecret reads (or makes, or with rotate replaces) the shared secret
// of a system: 32 random bytes, hex.
func SystemSecret(ks *signing.Keystore, id string, rotate bool) (string, error) {
	path := SystemSecretPath(ks, id)
	if b, err := os.ReadFile(path); err == nil && !rotate {
		return strings.TrimSpace(string(b)), nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	secret := hex.EncodeToString(buf)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(secret+"\n"), 0o600); err != nil {
		return "", err
	}
	return secret, os.Rename(tmp, path)
}
