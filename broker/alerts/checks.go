package alerts

import (
	"context"
	"fmt"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
)

// condition is a rule holding for one subject at a check.
type condition struct {
	rule     Rule
	subject  string
	severity string
	summary  string
	value    float64
	details  map[string]any
}

// checked is what one round of checks found: the conditions holding, and
// the rules that could not be checked (their alerts stay as they were:
// a source that is down must not resolve what it cannot see).
type checked struct {
	holds   []condition
	unknown map[Rule]error
}

// pending aggregates the late copies of one recipient.
type pending struct {
	count  int
	oldest time.Time
	id     string
}

func (p *pending) add(id string, at time.Time) {
	p.count++
	if p.oldest.IsZero() || at.Before(p.oldest) {
		p.oldest, p.id = at, id
	}
}

// checkTracking finds copies not delivered and not answered, per
// recipient: one alert per agency, not one per document, so a recipient
// that stopped fetching is one alert however much waits for it.
func (m *Manager) checkTracking(ctx context.Context, now time.Time, out *checked) {
	if m.src.Tracking == nil || (!m.cfg.on(RuleNotDelivered) && !m.cfg.on(RuleNotAnswered)) {
		return
	}
	undelivered, unanswered := map[string]*pending{}, map[string]*pending{}
	err := m.src.Tracking.EachTracking(ctx, func(t *broker.Tracking) error {
		if t.Kind != "" && t.Kind != envelope.KindDocument {
			return nil // updates, replacements, recalls get no business answer of their own
		}
		switch t.State {
		case envelope.StateSent:
			at := t.Reached(envelope.StateSent)
			if m.cfg.on(RuleNotDelivered) && !at.IsZero() && now.Sub(at) >= m.cfg.NotDelivered {
				p := undelivered[t.Recipient]
				if p == nil {
					p = &pending{}
					undelivered[t.Recipient] = p
				}
				p.add(t.Envelope, at)
			}
		case envelope.StateDelivered:
			at := t.Reached(envelope.StateDelivered)
			if m.cfg.on(RuleNotAnswered) && !at.IsZero() && now.Sub(at) >= m.cfg.NotAnswered {
				p := unanswered[t.Recipient]
				if p == nil {
					p = &pending{}
					unanswered[t.Recipient] = p
				}
				p.add(t.Envelope, at)
			}
		}
		return nil
	})
	if err != nil {
		out.unknown[RuleNotDelivered], out.unknown[RuleNotAnswered] = err, err
		return
	}
	emit := func(rule Rule, by map[string]*pending, what string, after time.Duration) {
		for agency, p := range by {
			sev := Warning
			if now.Sub(p.oldest) >= 3*after {
				sev = Critical
			}
			out.holds = append(out.holds, condition{rule: rule, subject: agency, severity: sev, value: float64(p.count),
				summary: fmt.Sprintf("%d document(s) to %s %s after %s (oldest %s since %s)", p.count, agency, what, after, p.id, p.oldest.UTC().Format(time.RFC3339)),
				details: map[string]any{"agency": agency, "documents": p.count, "oldest": p.id, "since": p.oldest.UTC()}})
		}
	}
	emit(RuleNotDelivered, undelivered, "not delivered", m.cfg.NotDelivered)
	emit(RuleNotAnswered, unanswered, "neither accepted nor rejected", m.cfg.NotAnswered)
}

// checkCertificates finds agency and system certificates expiring within
// CertExpiry (critical once expired).
func (m *Manager) checkCertificates(ctx context.Context, now time.Time, out *checked) {
	if !m.cfg.on(RuleCertExpiring) {
		return
	}
	check := func(kind, id, pemChain string) {
		certs, err := signing.ParseCerts([]byte(pemChain))
		if err != nil || len(certs) == 0 {
			return // directory-only entries have none
		}
		left := certs[0].NotAfter.Sub(now)
		if left > m.cfg.CertExpiry {
			return
		}
		sev, summary := Warning, fmt.Sprintf("certificate of %s %s expires in %d day(s), on %s", kind, id, int(left.Hours()/24), certs[0].NotAfter.UTC().Format(time.DateOnly))
		if left <= 0 {
			sev, summary = Critical, fmt.Sprintf("certificate of %s %s expired on %s", kind, id, certs[0].NotAfter.UTC().Format(time.DateOnly))
		}
		out.holds = append(out.holds, condition{rule: RuleCertExpiring, subject: kind + ":" + id, severity: sev, summary: summary,
			value: left.Hours() / 24, details: map[string]any{kind: id, "not_after": certs[0].NotAfter.UTC(), "serial": certs[0].SerialNumber.String()}})
	}
	if m.src.Tracking != nil {
		dir, err := m.src.Tracking.Agencies(ctx)
		if err != nil {
			out.unknown[RuleCertExpiring] = err
			return
		}
		for _, a := range dir {
			if a.State == broker.StateDeleted || !a.Withdrawn.IsZero() || (a.Bus != "" && m.bus != "" && a.Bus != m.bus) {
				continue // not this bus's to renew
			}
			check("agency", a.Code, a.Certificate)
		}
	}
	if m.src.Systems != nil {
		systems, err := m.src.Systems.Systems(ctx)
		if err != nil {
			out.unknown[RuleCertExpiring] = err
			return
		}
		for _, s := range systems {
			check("system", s.ID, s.Certificate)
		}
	}
}

// checkQuarantine raises while QuarantineGrowth entries or more were
// added within QuarantineWindow and are still there.
func (m *Manager) checkQuarantine(ctx context.Context, now time.Time, out *checked) {
	if m.src.Quarantine == nil || !m.cfg.on(RuleQuarantineGrowing) {
		return
	}
	st, err := m.src.Quarantine.QuarantineState(ctx, now.Add(-m.cfg.QuarantineWindow))
	if err != nil {
		out.unknown[RuleQuarantineGrowing] = err
		return
	}
	if st.Added >= uint64(m.cfg.QuarantineGrowth) {
		out.holds = append(out.holds, condition{rule: RuleQuarantineGrowing, subject: "quarantine", severity: Warning, value: float64(st.Entries),
			summary: fmt.Sprintf("%d message(s) quarantined within %s; %d in quarantine", st.Added, m.cfg.QuarantineWindow, st.Entries),
			details: map[string]any{"added": st.Added, "entries": st.Entries}})
	}
}

// checkLinks raises a link down for LinkDown or longer.
func (m *Manager) checkLinks(ctx context.Context, now time.Time, out *checked) {
	if m.src.Links == nil || !m.cfg.on(RuleLinkDown) {
		return
	}
	links, err := m.src.Links.Links(ctx)
	if err != nil {
		out.unknown[RuleLinkDown] = err
		return
	}
	seen := map[string]bool{}
	for _, l := range links {
		seen[l.Peer] = true
		if l.Up {
			delete(m.downSince, l.Peer)
			continue
		}
		since, ok := m.downSince[l.Peer]
		if !ok {
			since = now
			m.downSince[l.Peer] = now
		}
		if now.Sub(since) >= m.cfg.LinkDown {
			out.holds = append(out.holds, condition{rule: RuleLinkDown, subject: l.Peer, severity: Critical, value: now.Sub(since).Seconds(),
				summary: fmt.Sprintf("federation link to %s down since %s", l.Peer, since.UTC().Format(time.RFC3339)),
				details: map[string]any{"peer": l.Peer, "since": since.UTC()}})
		}
	}
	for p := range m.downSince {
		if !seen[p] {
			delete(m.downSince, p)
		}
	}
}

// checkDisk raises when the store's disk is DiskFull used or more.
func (m *Manager) checkDisk(ctx context.Context, out *checked) {
	if m.src.Disk == nil || !m.cfg.on(RuleDiskFilling) {
		return
	}
	path, used, total, err := m.src.Disk.Usage(ctx)
	if err != nil {
		out.unknown[RuleDiskFilling] = err
		return
	}
	if total == 0 {
		return
	}
	frac := float64(used) / float64(total)
	if frac >= m.cfg.DiskFull {
		sev := Warning
		if frac >= (1+m.cfg.DiskFull)/2 {
			sev = Critical
		}
		out.holds = append(out.holds, condition{rule: RuleDiskFilling, subject: path, severity: sev, value: frac,
			summary: fmt.Sprintf("disk of %s %.0f%% full (%d of %d MiB)", path, 100*frac, used>>20, total>>20),
			details: map[string]any{"path": path, "used": used, "total": total}})
	}
}
