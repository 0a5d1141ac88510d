package bus

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/filesvc"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/signing"
	"github.com/docaxis/docaxis/storage"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ServiceConfig configures the bus's own services.
type ServiceConfig struct {
	Bus BusConfig
	// Trust verifies statuses before they count; its roots are published
	// in the directory for clients that bring no trust of their own.
	Trust  *signing.Trust
	Logger *slog.Logger
	// Store is the attachment store behind the bus's attachment service
	// (default: the embedded store).
	Store storage.Store
	// Files configures the attachment service agencies reach the store
	// through; NoFiles runs the bus without it (tests that run their own).
	Files   filesvc.Config
	NoFiles bool
	// Server is the embedded server nc is connected to, when the bus runs
	// one: tracking events of a pair nobody watches are then not published
	// at all (Server.Interest). Nil on an external cluster.
	Server *Server
}

// Service is what `docaxis serve` runs next to (or against) NATS: the
// stream set-up and the services StartService starts.
type Service struct {
	Client  *broker.Client
	Tracker *Tracker
	Files   *filesvc.Service

	gate       *rateGate
	quarantine *quarantineService
	system     *sysService
	drainStop  context.CancelFunc
	drainDone  chan struct{}
	// track answers agencies' tracking requests and publishes their
	// tracking events.
	track *trackService
}

// StartService sets the bus up on nc and starts its services: the
// tracker, the tracking service, the rate gate, the quarantine service, the
// system service, the attachment service, and the drain of mail stored for
// agencies that moved to a system.
func StartService(ctx context.Context, nc *nats.Conn, cfg ServiceConfig) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Trust == nil {
		return nil, fmt.Errorf("start bus service: no trust (root certificates) given")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("open JetStream: %w", err)
	}
	if err := Setup(ctx, js, cfg.Bus); err != nil {
		return nil, err
	}
	opts := []broker.Option{broker.WithTrust(cfg.Trust), broker.WithLogger(cfg.Logger)}
	if cfg.Store != nil {
		opts = append(opts, broker.WithStore(cfg.Store))
	}
	c, err := broker.New(ctx, nc, opts...)
	if err != nil {
		return nil, err
	}
	// Whatever fails below stops what started before it, the client last.
	svc := &Service{Client: c}
	started := false
	defer func() {
		if !started {
			svc.Stop()
		}
	}()
	for _, r := range cfg.Trust.Roots() {
		if err := c.PublishRoot(ctx, r); err != nil {
			return nil, err
		}
	}
	if err := c.EnsureMailboxes(ctx); err != nil {
		return nil, err
	}
	tr, err := NewTracker(ctx, c.JetStream(), c.Verifier(), cfg.Logger)
	if err != nil {
		return nil, err
	}
	tr.recordedAt = c.RecordedAt
	tr.remote = c.ServedElsewhere
	tr.systemOf = c.ServingSystem
	svc.Tracker = tr
	// The tracking service first: it publishes the changes the tracker
	// makes from its start on.
	var interest func(string) bool
	if cfg.Server != nil {
		if interest, err = cfg.Server.Interest(nc); err != nil {
			return nil, err
		}
	}
	if svc.track, err = startTrackService(ctx, c, tr, interest, cfg.Logger); err != nil {
		return nil, err
	}
	if err := tr.Start(ctx); err != nil {
		return nil, err
	}
	// The rate gate and the quarantine service: agencies ask the latter to
	// quarantine copies of their own mailbox and for the gate's verdicts.
	if svc.gate, err = startRateGate(ctx, c, cfg.Bus, cfg.Logger); err != nil {
		return nil, err
	}
	if svc.quarantine, err = startQuarantineService(ctx, nc, c.JetStream(), svc.gate, cfg.Logger); err != nil {
		return nil, err
	}
	if svc.system, err = startSystemService(ctx, c, cfg.Logger); err != nil {
		return nil, err
	}
	dctx, dcancel := context.WithCancel(context.Background())
	svc.drainStop, svc.drainDone = dcancel, make(chan struct{})
	go func() {
		defer close(svc.drainDone)
		svc.drainTransfers(dctx, cfg.Logger)
	}()
	if cfg.NoFiles {
		started = true
		return svc, nil
	}
	refs, err := c.JetStream().KeyValue(ctx, record.FileRefsBucket)
	if err != nil {
		return nil, err
	}
	fc := cfg.Files
	if fc.InboxPrefix == "" {
		// Replies only to the caller's own inbox (auth.InboxPrefix).
		fc.InboxPrefix = "_INBOX_"
	}
	if fc.Logger == nil {
		fc.Logger = cfg.Logger
	}
	if fc.SystemServes == nil {
		fc.SystemServes = func(ctx context.Context, id, agency string) error {
			// From the bucket, not the cache: a move just made counts.
			a, err := c.ReadAgency(ctx, agency)
			return broker.Served(a, err, id, agency)
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	files, err := filesvc.Serve(fctx, nc, c.Store(), refs, fc)
	if err != nil {
		return nil, fmt.Errorf("start attachment service: %w", err)
	}
	svc.Files = files
	started = true
	return svc, nil
}

// Stop stops the bus's services and the service's client.
func (s *Service) Stop() {
	if s.Files != nil {
		s.Files.Stop()
	}
	if s.drainStop != nil {
		s.drainStop()
		<-s.drainDone
	}
	if s.system != nil {
		s.system.stop()
	}
	if s.quarantine != nil {
		s.quarantine.stop()
	}
	if s.gate != nil {
		s.gate.stop()
	}
	if s.track != nil {
		s.track.stop()
	}
	if s.Tracker != nil {
		s.Tracker.Stop()
	}
	s.Client.Close()
}

// drainTransfers removes, now and then, the transfer consumers of systems
// that have caught up with the mail of agencies moved to them.
func (s *Service) drainTransfers(ctx context.Context, log *slog.Logger) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Client.DrainTransfers(ctx); err != nil && ctx.Err() == nil {
				log.Warn("system transfer mailboxes not checked", "err", err)
			}
		}
	}
}
