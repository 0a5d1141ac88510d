package alerts

import (
	"fmt"
	"time"
)

// Rule names an alert rule.
type Rule string

// Rules.
const (
	RuleNotDelivered      Rule = "not_delivered"      // copies still "sent" after NotDelivered
	RuleNotAnswered       Rule = "not_answered"       // copies delivered, neither accepted nor rejected after NotAnswered
	RuleCertExpiring      Rule = "cert_expiring"      // an agency or system certificate expires within CertExpiry
	RuleQuarantineGrowing Rule = "quarantine_growing" // QuarantineGrowth entries or more added within QuarantineWindow
	RuleLinkDown          Rule = "link_down"          // a federation link down for LinkDown or longer
	RuleDiskFilling       Rule = "disk_filling"       // the store's disk used at DiskFull or more
)

// Rules lists every rule, in the order they are checked.
var Rules = []Rule{RuleNotDelivered, RuleNotAnswered, RuleCertExpiring, RuleQuarantineGrowing, RuleLinkDown, RuleDiskFilling}

// Severities.
const (
	Warning  = "warning"
	Critical = "critical"
)

// Config sets the rules' thresholds and how alerts are sent. Zero fields
// take the defaults (DefaultConfig); a negative duration or threshold
// turns its rule off.
type Config struct {
	NotDelivered     time.Duration // default 24h
	NotAnswered      time.Duration // default 7 days
	CertExpiry       time.Duration // default 60 days
	QuarantineGrowth int           // default 1 entry
	QuarantineWindow time.Duration // default 1h
	LinkDown         time.Duration // default 15m
	DiskFull         float64       // fraction used, default 0.85

	// Interval between checks in Run (default 1m); Repeat is how often a
	// holding alert is sent again (default 4h); Keep is how long a
	// resolved alert stays listed (default 7 days).
	Interval time.Duration
	Repeat   time.Duration
	Keep     time.Duration

	// Webhook receives every raised, repeated and resolved alert ("": none).
	Webhook WebhookConfig

	// Now is the clock (default time.Now); tests move it forward.
	Now func() time.Time
}

// DefaultConfig holds the defaults.
var DefaultConfig = Config{
	NotDelivered:     24 * time.Hour,
	NotAnswered:      7 * 24 * time.Hour,
	CertExpiry:       60 * 24 * time.Hour,
	QuarantineGrowth: 1,
	QuarantineWindow: time.Hour,
	LinkDown:         15 * time.Minute,
	DiskFull:         0.85,
	Interval:         time.Minute,
	Repeat:           4 * time.Hour,
	Keep:             7 * 24 * time.Hour,
}

func (c *Config) defaults() error {
	d := DefaultConfig
	dur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	dur(&c.NotDelivered, d.NotDelivered)
	dur(&c.NotAnswered, d.NotAnswered)
	dur(&c.CertExpiry, d.CertExpiry)
	dur(&c.QuarantineWindow, d.QuarantineWindow)
	dur(&c.LinkDown, d.LinkDown)
	dur(&c.Interval, d.Interval)
	dur(&c.Repeat, d.Repeat)
	dur(&c.Keep, d.Keep)
	if c.QuarantineGrowth == 0 {
		c.QuarantineGrowth = d.QuarantineGrowth
	}
	if c.DiskFull == 0 {
		c.DiskFull = d.DiskFull
	}
	if c.DiskFull > 1 {
		return fmt.Errorf("%w: disk-full %g: want a fraction of the disk, at most 1 (e.g. 0.85)", ErrConfig, c.DiskFull)
	}
	if c.Interval < 0 || c.Repeat < 0 {
		return fmt.Errorf("%w: interval %s, repeat %s: want positive durations", ErrConfig, c.Interval, c.Repeat)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c.Webhook.defaults()
}

// on reports whether a rule is on.
func (c *Config) on(r Rule) bool {
	switch r {
	case RuleNotDelivered:
		return c.NotDelivered > 0
	case RuleNotAnswered:
		return c.NotAnswered > 0
	case RuleCertExpiring:
		return c.CertExpiry > 0
	case RuleQuarantineGrowing:
		return c.QuarantineGrowth > 0 && c.QuarantineWindow > 0
	case RuleLinkDown:
		return c.LinkDown > 0
	case RuleDiskFilling:
		return c.DiskFull > 0
	}
	return false
}
