package broker

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go"
)

// ServiceConfig configures the bus's own services.
type ServiceConfig struct {
	Bus BusConfig
	// Trust verifies statuses before they count; its roots are published
	// in the directory for clients that bring no trust of their own.
	Trust  *signing.Trust
	Logger *slog.Logger
}

// Service is what `docaxis serve` runs next to (or against) NATS: the
// stream set-up and the tracker.
type Service struct {
	Client  *Client
	Tracker *Tracker
}

// StartService sets the bus up on nc and starts its tracker.
func StartService(ctx context.Context, nc *nats.Conn, cfg ServiceConfig) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Trust == nil {
		return nil, fmt.Errorf("start bus service: no trust (root certificates) given")
	}
	js, err := newJetStream(nc)
	if err != nil {
		return nil, err
	}
	if err := Setup(ctx, js, cfg.Bus); err != nil {
		return nil, err
	}
	c, err := New(ctx, nc, WithTrust(cfg.Trust), WithLogger(cfg.Logger))
	if err != nil {
		return nil, err
	}
	for _, r := range cfg.Trust.Roots() {
		if err := c.PublishRoot(ctx, r); err != nil {
			return nil, err
		}
	}
	tr, err := NewTracker(ctx, c.js, c.verifier, cfg.Logger)
	if err != nil {
		return nil, err
	}
	if err := tr.Start(ctx); err != nil {
		return nil, err
	}
	return &Service{Client: c, Tracker: tr}, nil
}

// Stop stops the tracker and the service's client.
func (s *Service) Stop() {
	s.Tracker.Stop()
	s.Client.Close()
}
