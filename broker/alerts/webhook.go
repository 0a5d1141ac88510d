package alerts

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// WebhookConfig sets where alerts are POSTed and how hard to try.
type WebhookConfig struct {
	// URL receives each Event as a JSON POST ("": no webhook).
	URL string
	// Secret, when set, signs each body: header X-Docaxis-Signature is
	// "sha256=" and the hex HMAC-SHA256 of the body under Secret, so the
	// receiver can tell the bus's alerts from anyone's POST.
	Secret string
	// Timeout bounds one attempt (default 10s).
	Timeout time.Duration
	// Attempts bounds the tries of one event (default 10); between them
	// the wait doubles from Backoff (default 1s) up to MaxBackoff
	// (default 5m).
	Attempts   int
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Queue bounds the events waiting (default 1024).
	Queue int
	// Client sends the requests (default: a client without redirects).
	Client *http.Client
}

func (c *WebhookConfig) defaults() error {
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%w: webhook %q: want an http:// or https:// URL", ErrConfig, c.URL)
		}
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Attempts <= 0 {
		c.Attempts = 10
	}
	if c.Backoff <= 0 {
		c.Backoff = time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Minute
	}
	if c.Queue <= 0 {
		c.Queue = 1024
	}
	if c.Client == nil {
		// A receiver that redirects is misconfigured: alerts are not
		// followed elsewhere.
		c.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return nil
}

// webhook sends events one at a time, in order, each retried with
// back-off until it is taken or its attempts are spent.
type webhook struct {
	cfg    WebhookConfig
	log    *slog.Logger
	queue  chan Event
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	sent, retries, failed, dropped atomic.Uint64
}

func startWebhook(cfg WebhookConfig, log *slog.Logger) *webhook {
	ctx, cancel := context.WithCancel(context.Background())
	w := &webhook{cfg: cfg, log: log, queue: make(chan Event, cfg.Queue), ctx: ctx, cancel: cancel}
	w.wg.Add(1)
	go w.run()
	return w
}

// enqueue never blocks the checks: a full queue drops the event, logged
// and counted (the alert itself stays in the bucket and on the page).
func (w *webhook) enqueue(e Event) {
	select {
	case w.queue <- e:
	default:
		w.dropped.Add(1)
		w.log.Error("alert webhook queue full: event dropped", "alert", e.Alert.ID, "type", e.Type, "queue", w.cfg.Queue)
	}
}

func (w *webhook) stop() {
	w.cancel()
	w.wg.Wait()
}

func (w *webhook) run() {
	defer w.wg.Done()
	for {
		select {
		case e := <-w.queue:
			w.deliver(e)
		case <-w.ctx.Done():
			return
		}
	}
}

func (w *webhook) deliver(e Event) {
	body, err := json.Marshal(e)
	if err != nil {
		w.failed.Add(1)
		w.log.Error("alert webhook: encode event", "alert", e.Alert.ID, "err", err)
		return
	}
	wait := w.cfg.Backoff
	for attempt := 1; ; attempt++ {
		err := w.post(body)
		if err == nil {
			w.sent.Add(1)
			return
		}
		if attempt >= w.cfg.Attempts {
			w.failed.Add(1)
			w.log.Error("alert webhook: gave up", "alert", e.Alert.ID, "type", e.Type, "attempts", attempt, "err", err)
			return
		}
		w.retries.Add(1)
		w.log.Warn("alert webhook: retrying", "alert", e.Alert.ID, "type", e.Type, "attempt", attempt, "in", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-w.ctx.Done():
			return
		}
		wait = min(2*wait, w.cfg.MaxBackoff)
	}
}

func (w *webhook) post(body []byte) error {
	ctx, cancel := context.WithTimeout(w.ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrWebhook, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "docaxis-alerts")
	if w.cfg.Secret != "" {
		mac := hmac.New(sha256.New, []byte(w.cfg.Secret))
		mac.Write(body)
		req.Header.Set("X-Docaxis-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}
	resp, err := w.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: POST %s: %w", ErrWebhook, w.cfg.URL, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%w: POST %s: %s", ErrWebhook, w.cfg.URL, resp.Status)
	}
	return nil
}
