package federation

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bucket"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The directory in a federation: each bus registers its own agencies
// (broker.Agency.Bus is the bus id). A member announces its agencies and
// CRLs up through its outbound stream; the national checks each against
// the member's CA and writes it into its directory, which is the
// federation's; every member sources that directory and copies in the
// entries of other buses. Entries only ever flow from the bus that owns
// them, so nothing loops: a member never announces an entry of another
// bus, and never takes in one of its own.

// followDirectory applies the local directory: the buses and their CAs
// (trust, approved roots for the bus's clients, links on the national),
// agencies registered without a bus (adopted), this bus's own agencies and
// CRLs (announced up, on a member). It returns once the current entries
// are applied.
func (s *Service) followDirectory(ctx context.Context) error {
	w, err := s.dir.WatchAll(s.ctx)
	if err != nil {
		return fmt.Errorf("watch the directory: %w", err)
	}
	return s.follow(ctx, "the directory", w, s.applyEntry, following{loaded: func() {
		if s.book.settle() {
			s.bindingsChanged()
		}
	}})
}

func (s *Service) applyEntry(e jetstream.KeyValueEntry) {
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	key, put := e.Key(), e.Operation() == jetstream.KeyValuePut
	switch {
	case strings.HasPrefix(key, busKeyPrefix):
		id := strings.TrimPrefix(key, busKeyPrefix)
		if !put {
			s.book.removeBus(id)
			return
		}
		s.applyBus(ctx, id, e.Value())
	case record.IsDirectoryAgencyKey(key):
		code, _ := record.DirectoryAgencyOf(key)
		if !put {
			s.mu.Lock()
			was := s.local[code]
			delete(s.local, code)
			s.mu.Unlock()
			if was && !s.National() {
				s.announce(ctx, fedSubject{Dest: s.cfg.National, Kind: kindDir, A: "agency", B: envelope.Token(code)}, nil, fmt.Sprintf("del.%d", e.Revision()))
			}
			return
		}
		a, err := decodeAgency(e.Value())
		if err != nil {
			return
		}
		if a.Bus == "" {
			// Registered before the bus joined a federation (or by an older
			// client): it is this bus's.
			a.Bus = s.bus
			b, _ := json.Marshal(a)
			if _, err := s.dir.Update(ctx, key, b, e.Revision()); err != nil && !bucket.Conflict(err) {
				s.log.Warn("federation: adopt agency", "agency", a.Code, "err", err)
			}
			return
		}
		s.book.bind(a)
		if a.Bus != s.bus {
			s.mu.Lock()
			delete(s.local, a.Code)
			s.mu.Unlock()
			return
		}
		s.mu.Lock()
		s.local[a.Code] = true
		s.mu.Unlock()
		s.announceAgency(ctx, a, e.Value())
	case strings.HasPrefix(key, broker.CRLPrefix) && put:
		kid, ok := crlKID(key)
		if !ok {
			return // a CA withdrawal: the bus entries carry it for the federation
		}
		bus := s.book.applyCRL(kid, e.Value())
		if bus == s.bus && !s.National() {
			s.announce(ctx, fedSubject{Dest: s.cfg.National, Kind: kindDir, A: "crl", B: kid}, e.Value(), "")
		}
	}
}

// applyBus applies a bus entry of the directory: the bus's CAs (trust,
// approved roots for the bus's clients), its binding, its removal, and on
// the national its link.
func (s *Service) applyBus(ctx context.Context, id string, value []byte) {
	var b BusEntry
	if err := json.Unmarshal(value, &b); err != nil || b.ID != id {
		s.log.Warn("federation: bad bus entry", "bus", id, "err", err)
		return
	}
	ca, former, err := b.cas()
	if err != nil {
		s.log.Warn("federation: bad bus entry", "bus", id, "err", err)
		return
	}
	if id == s.bus {
		if !ca.Equal(s.cfg.CA.Cert) {
			s.log.Error("federation: the national directory lists another CA for this bus; keeping our own", "bus", id)
			return
		}
		if !b.Removed.IsZero() {
			s.log.Error("federation: this bus was removed from the federation", "at", b.Removed)
		}
	}
	changed := s.book.setEntry(b, ca, former)
	// The bus's clients verify remote senders against the approved roots;
	// withdrawn CAs stay, marked withdrawn (crl.<key id>.withdrawn).
	for _, c := range append([]*x509.Certificate{ca}, keysOf(former)...) {
		if _, err := s.dir.Create(ctx, broker.FedRootPrefix+envelope.Fingerprint(c), signing.EncodeCerts(c)); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			s.log.Warn("federation: publish approved root", "bus", id, "err", err)
		}
	}
	switch {
	case s.National() && id != s.bus && !b.Removed.IsZero():
		s.unlinkMember(ctx, id)
	case s.National() && id != s.bus:
		if err := s.ensureMember(ctx, id); err != nil {
			s.log.Error("federation: set up member link", "member", id, "err", err)
		}
	}
	// Once, after the directory is loaded, rather than per bus at start.
	if changed && (s.National() || id == s.bus) && s.book.resyncLater() {
		s.bindingsChanged()
	}
}

// bindingsChanged acts on a change of the code bindings: the national
// withdraws what they no longer allow; a member whose own binding changed
// announces its agencies again under it (the binding decides what the
// national accepts).
func (s *Service) bindingsChanged() {
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Minute)
	defer cancel()
	if s.National() {
		s.reconcileCodes(ctx)
	} else {
		s.reannounce(ctx)
	}
}

func keysOf(m map[*x509.Certificate]time.Time) []*x509.Certificate {
	out := make([]*x509.Certificate, 0, len(m))
	for c := range m {
		out = append(out, c)
	}
	return out
}

// announceAgency sends one of this bus's agencies up to the national
// (members), unless the bus's binding, when known, does not cover it: the
// national would refuse it. The message id carries the binding, so that
// after a change of binding the same entry is announced again.
func (s *Service) announceAgency(ctx context.Context, a broker.Agency, value []byte) {
	if s.National() {
		if err := s.book.mayClaim(s.bus, a.Code); err != nil {
			s.log.Warn("federation: an agency of the national bus is outside its binding", "agency", a.Code, "err", err)
		}
		return
	}
	if s.book.bindingOf(s.bus) != "" {
		if err := s.book.mayClaim(s.bus, a.Code); err != nil {
			s.log.Error("federation: agency not announced to the national bus", "agency", a.Code, "err", err)
			return
		}
	}
	variant := digestOf(string(value))[:16] + "." + digestOf(s.book.bindingOf(s.bus))[:8]
	s.announce(ctx, fedSubject{Dest: s.cfg.National, Kind: kindDir, A: "agency", B: envelope.Token(a.Code)}, value, variant)
}

// reannounce announces this bus's agencies again (after its binding
// changed).
func (s *Service) reannounce(ctx context.Context) {
	list, err := s.c.Agencies(ctx)
	if err != nil {
		s.log.Warn("federation: list agencies to announce", "err", err)
		return
	}
	for _, a := range list {
		if a.Bus != s.bus || !a.Withdrawn.IsZero() {
			continue
		}
		e, err := s.dir.Get(ctx, agencyKey(a.Code))
		if err != nil {
			continue
		}
		s.announceAgency(ctx, a, e.Value())
	}
}

// reconcileCodes withdraws from the national directory the agencies a
// member serves against the bindings (registered before its binding was
// set or changed): the binding, not the order of arrival, decides. The
// bus the code is bound to announces it again and takes it.
func (s *Service) reconcileCodes(ctx context.Context) {
	lister, err := s.dir.ListKeysFiltered(ctx, record.DirectoryAgencyFilter)
	if err != nil {
		if !errors.Is(err, jetstream.ErrNoKeysFound) {
			s.log.Warn("federation: reconcile codes", "err", err)
		}
		return
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	for _, k := range keys {
		e, err := s.dir.Get(ctx, k)
		if err != nil {
			continue
		}
		a, err := decodeAgency(e.Value())
		if err != nil || a.Bus == "" || a.Bus == s.bus || !a.Withdrawn.IsZero() || s.book.removed(a.Bus) {
			continue
		}
		if err := s.book.mayClaim(a.Bus, a.Code); err != nil {
			s.log.Warn("federation: agency withdrawn from the directory by the code bindings", "agency", a.Code, "bus", a.Bus, "err", err)
			if err := s.dir.Delete(ctx, k, jetstream.LastRevision(e.Revision())); err != nil && !bucket.Conflict(err) {
				s.log.Warn("federation: reconcile codes", "agency", a.Code, "err", err)
			}
		}
	}
}

// unlinkMember stops, on the national, the link of a member that left:
// the consumers its streams source from are deleted (what waited for it
// stays in the relay stream, on record).
func (s *Service) unlinkMember(ctx context.Context, member string) {
	for _, c := range []struct{ stream, name string }{{RelayStream, downPrefix + member}, {kvDirectoryStream, dirDownPrefix + member}} {
		if err := s.js.DeleteConsumer(ctx, c.stream, c.name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			s.log.Warn("federation: stop the link of a removed member", "member", member, "consumer", c.name, "err", err)
		}
	}
	s.mu.Lock()
	delete(s.members, member)
	s.mu.Unlock()
}

// announce sends a directory entry (nil: its removal) up to the national.
// The message id is derived from the content, so announcing the same entry
// again (at every start) is absorbed.
func (s *Service) announce(ctx context.Context, fs fedSubject, value []byte, variant string) {
	m := &nats.Msg{Subject: fs.subject(outPrefix), Data: value, Header: nats.Header{}}
	if value == nil {
		m.Header.Set(HeaderDirOp, "delete")
	}
	if variant == "" {
		variant = digestOf(string(value))[:16]
	}
	m.Header.Set(jetstream.MsgIDHeader, "d."+fs.A+"."+fs.B+"."+variant)
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = s.publish(ctx, m, OutStream); err == nil {
			return
		}
		sleep(ctx, time.Second)
	}
	s.log.Error("federation: directory announcement not sent (it is sent again at the next start)", "entry", fs.A+"."+fs.B, "err", err)
}

// announced applies, on the national bus, a directory entry member sent up:
// an agency must be registered for that member and chain to the member's
// CA, and may not take a code another bus serves; a CRL must be signed by
// the member's CA.
func (s *Service) announced(ctx context.Context, member string, fs fedSubject, msg jetstream.Msg) error {
	t := s.book.trustFor(member)
	if t == nil {
		return fmt.Errorf("announcement from %w %q", ErrUnknownBus, member)
	}
	if s.book.removed(member) {
		return refused("announcement from bus %s: %w", member, ErrRemoved)
	}
	switch fs.A {
	case "agency":
		code := envelope.CodeFromToken(fs.B)
		key := record.DirectoryKey(code)
		cur, err := s.lookup(ctx, code)
		if err != nil && !errors.Is(err, broker.ErrUnknownAgency) {
			return err
		}
		if msg.Headers().Get(HeaderDirOp) == "delete" {
			if cur != nil && cur.Bus == member {
				if err := s.dir.Delete(ctx, key); err != nil {
					return fmt.Errorf("remove %s of bus %s: %w", code, member, err)
				}
			}
			return nil
		}
		a, err := decodeAgency(msg.Data())
		if err != nil || a.Code != code {
			return refused("bus %s announced a bad entry for %s", member, code)
		}
		if a.Bus != member {
			return refused("bus %s announced %s as served by bus %q", member, code, a.Bus)
		}
		if !a.Withdrawn.IsZero() {
			return refused("bus %s announced %s as withdrawn", member, code)
		}
		if err := s.book.mayClaim(member, code); err != nil {
			return refused("bus %s announced %s: %w", member, code, err)
		}
		// The binding decides, not the order of arrival: an entry of
		// another bus gives way when that bus may no longer serve the code
		// (withdrawn, or outside the bindings since).
		if cur != nil && cur.Bus != "" && cur.Bus != member && cur.Withdrawn.IsZero() && !s.book.removed(cur.Bus) && (cur.Bus == s.bus || s.book.mayClaim(cur.Bus, code) == nil) {
			return refused("bus %s announced %s: %w: served by bus %s", member, code, broker.ErrServedElsewhere, cur.Bus)
		}
		if err := checkAnnouncedAgency(t, a); err != nil {
			return refused("bus %s announced %s: %w", member, code, err)
		}
		if old, err := s.dir.Get(ctx, key); err == nil && bytes.Equal(old.Value(), msg.Data()) {
			return nil
		}
		if _, err := s.dir.Put(ctx, key, msg.Data()); err != nil {
			return fmt.Errorf("register %s of bus %s: %w", code, member, err)
		}
		return nil
	case "crl":
		crl, err := x509.ParseRevocationList(msg.Data())
		if err != nil {
			return refused("bus %s announced a bad CRL: %w", member, err)
		}
		// Signed by the member's CA, naming it, and kept under its key: a
		// member speaks only for its own certificates.
		ca := s.book.ca(member)
		if _, err := signing.NewTrust(ca).CRLIssuer(crl); err != nil {
			return refused("bus %s announced a CRL its CA did not sign: %w", member, err)
		}
		if kid := signing.KeyID(ca); kid != fs.B {
			return refused("bus %s announced a CRL of its CA (key %s) under the key %s", member, kid, fs.B)
		}
		key := broker.CRLPrefix + fs.B
		if old, err := s.dir.Get(ctx, key); err == nil {
			if bytes.Equal(old.Value(), msg.Data()) {
				return nil
			}
			// An older list cannot bring a revoked certificate back.
			if prev, err := x509.ParseRevocationList(old.Value()); err == nil && prev.Number != nil && (crl.Number == nil || crl.Number.Cmp(prev.Number) < 0) {
				return refused("bus %s announced CRL number %v, number %s is in force: %w", member, crl.Number, prev.Number, signing.ErrStaleCRL)
			}
		}
		if _, err := s.dir.Put(ctx, key, msg.Data()); err != nil {
			return fmt.Errorf("publish CRL of bus %s: %w", member, err)
		}
		return nil
	}
	return refused("bus %s announced an unknown directory entry %s", member, fs.A)
}

func checkAnnouncedAgency(t *signing.Trust, a broker.Agency) error {
	if a.NonStandard {
		if err := envelope.CheckNonStandardCode(a.Code); err != nil {
			return err
		}
	} else if err := envelope.CheckCode(a.Code); err != nil {
		return err
	}
	// Bindings to a document system of the member: signed by its CA, as
	// receivers anywhere check a system's signature against them.
	for _, raw := range a.Bindings {
		b, _, err := t.OpenBinding(raw)
		if err != nil {
			return err
		}
		if b.Agency != a.Code {
			return fmt.Errorf("%w: a binding names agency %s", broker.ErrInvalidEntry, b.Agency)
		}
	}
	if a.Certificate == "" {
		return nil // served by a system, or listed only
	}
	certs, err := signing.ParseCerts([]byte(a.Certificate))
	if err != nil {
		return err
	}
	if bound := signing.AgencyOf(certs[0]); bound != "" && bound != a.Code {
		return fmt.Errorf("%w: certificate is bound to %s", signing.ErrAgencyMismatch, bound)
	}
	// Whether the chain is the member's, not whether it is still valid:
	// checked inside the certificates' common validity.
	at := certs[0].NotBefore
	for _, c := range certs {
		if c.NotBefore.After(at) {
			at = c.NotBefore
		}
	}
	return t.VerifyChain(certs, at.Add(time.Second))
}

// dirsync copies, on a member, the national directory's entries of other
// buses (agencies, buses, CRLs) into the local directory.
func (s *Service) dirsync(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata) error {
	key, ok := strings.CutPrefix(msg.Subject(), record.KVSubject(record.DirectoryBucket, ""))
	if !ok {
		return nil
	}
	del := msg.Headers().Get("KV-Operation") != ""
	local, err := s.dir.Get(ctx, key)
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("directory sync %s: %w", key, err)
	}
	switch {
	case record.IsDirectoryAgencyKey(key):
		if local != nil {
			if la, err := decodeAgency(local.Value()); err == nil && (la.Bus == s.bus || la.Bus == "") {
				if del {
					return nil // this bus's own entry: it is the source
				}
				a, err := decodeAgency(msg.Data())
				if err != nil || a.Bus == s.bus {
					return nil
				}
				// Claimed here while the link was down, but the national
				// lists it for another bus: the binding decides.
				if s.book.mayClaim(s.bus, la.Code) == nil {
					s.log.Warn("federation: the national directory lists one of this bus's agencies as another bus's", "agency", la.Code, "bus", a.Bus)
					return nil
				}
				s.log.Warn("federation: an agency registered here is bound to another bus; it is that bus's now", "agency", la.Code, "bus", a.Bus)
			}
		}
		if del {
			if local != nil {
				return s.dir.Delete(ctx, key)
			}
			return nil
		}
		a, err := decodeAgency(msg.Data())
		if err != nil || a.Bus == "" || a.Bus == s.bus {
			return nil
		}
	case strings.HasPrefix(key, broker.CRLPrefix) && s.ownCRLKey(key):
		return nil // this bus's own CRL: it is the source
	case strings.HasPrefix(key, busKeyPrefix), strings.HasPrefix(key, broker.CRLPrefix):
		if !del && strings.HasPrefix(key, busKeyPrefix) {
			// Known at once, in the national's order: the agency entries
			// that follow are judged by it (the local directory's watcher
			// applies the rest of the entry).
			var b BusEntry
			if json.Unmarshal(msg.Data(), &b) == nil {
				s.book.learnBinding(b.ID, b.Codes)
			}
		}
		if del {
			if local != nil && key != busKey(s.bus) {
				return s.dir.Delete(ctx, key)
			}
			return nil
		}
	default:
		return nil
	}
	if local != nil && bytes.Equal(local.Value(), msg.Data()) {
		return nil
	}
	if _, err := s.dir.Put(ctx, key, msg.Data()); err != nil {
		return fmt.Errorf("directory sync %s: %w", key, err)
	}
	return nil
}

// ownCRLKey reports whether a CRL directory key (or withdrawal) is about
// this bus's own CA.
func (s *Service) ownCRLKey(key string) bool {
	kid, _, _ := strings.Cut(strings.TrimPrefix(key, broker.CRLPrefix), ".")
	return kid == signing.KeyID(s.cfg.CA.Cert)
}
