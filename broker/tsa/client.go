package tsa

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Client asks one of several TSAs for tokens, in order, starting with the
// last one that answered: a TSA that fails (unreachable, garbage, a token
// that does not verify) hands over to the next.
type Client struct {
	urls  []string
	roots []*x509.Certificate
	http  *http.Client

	mu     sync.Mutex
	active int
	status Status
}

// Status says which TSA is in use and how the last attempts went.
type Status struct {
	// URL is the TSA that gave the last token (the first configured one
	// before any); TSA is its certificate's common name.
	URL string `json:"url"`
	TSA string `json:"tsa,omitempty"`
	// URLs are all configured TSAs, in fail-over order.
	URLs        []string  `json:"urls"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Failures counts attempts that failed since the last success.
	Failures int `json:"failures"`
}

// ClientOption configures a Client.
type ClientOption func(*clientOptions) error

type clientOptions struct {
	tlsRoots *x509.CertPool
	timeout  time.Duration
	http     *http.Client
}

// WithTLSRoots trusts pool for the TSAs' HTTPS certificates (--tsa-ca),
// instead of the system's roots.
func WithTLSRoots(pool *x509.CertPool) ClientOption {
	return func(o *clientOptions) error { o.tlsRoots = pool; return nil }
}

// WithTimeout bounds one request to one TSA (default 10s).
func WithTimeout(d time.Duration) ClientOption {
	return func(o *clientOptions) error { o.timeout = d; return nil }
}

// WithHTTPClient uses hc for every request.
func WithHTTPClient(hc *http.Client) ClientOption {
	return func(o *clientOptions) error { o.http = hc; return nil }
}

// NewClient returns a client for urls (http or https), trusting tokens
// whose signer chains to one of roots.
func NewClient(urls []string, roots []*x509.Certificate, opts ...ClientOption) (*Client, error) {
	if len(urls) == 0 {
		return nil, errors.New("time-stamp client: no TSA URL")
	}
	if len(roots) == 0 {
		return nil, errors.New("time-stamp client: no trusted TSA root")
	}
	for _, u := range urls {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, fmt.Errorf("time-stamp client: TSA URL %q is not http(s)://host/...", u)
		}
	}
	o := clientOptions{timeout: 10 * time.Second}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	hc := o.http
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if o.tlsRoots != nil {
			tr.TLSClientConfig = &tls.Config{RootCAs: o.tlsRoots, MinVersion: tls.VersionTLS12}
		}
		hc = &http.Client{Transport: tr, Timeout: o.timeout}
	}
	c := &Client{urls: append([]string(nil), urls...), roots: roots, http: hc}
	c.status = Status{URL: urls[0], URLs: c.urls}
	return c, nil
}

// Roots are the TSA roots the client trusts.
func (c *Client) Roots() []*x509.Certificate { return c.roots }

// Status returns a copy of the client's status.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.status
	s.URLs = append([]string(nil), c.urls...)
	return s
}

// Timestamp gets a token over the SHA-256 of data from the first TSA
// that gives a valid one. The error wraps ErrUnavailable and each TSA's
// reason.
func (c *Client) Timestamp(ctx context.Context, data []byte) (*Token, error) {
	req, err := NewRequest(data)
	if err != nil {
		return nil, err
	}
	der, err := req.Marshal()
	if err != nil {
		return nil, fmt.Errorf("time-stamp request: %w", err)
	}
	c.mu.Lock()
	start := c.active
	c.mu.Unlock()
	var errs []error
	for i := range c.urls {
		n := (start + i) % len(c.urls)
		tok, err := c.ask(ctx, c.urls[n], der, req)
		if err == nil {
			c.mu.Lock()
			c.active = n
			c.status.URL, c.status.TSA, c.status.LastSuccess, c.status.Failures = c.urls[n], tok.TSAName(), time.Now(), 0
			c.mu.Unlock()
			return tok, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", c.urls[n], err))
		if ctx.Err() != nil {
			break
		}
	}
	err = fmt.Errorf("%w: %w", ErrUnavailable, errors.Join(errs...))
	c.mu.Lock()
	c.status.LastError, c.status.LastErrorAt = err.Error(), time.Now()
	c.status.Failures++
	c.mu.Unlock()
	return nil, err
}

func (c *Client) ask(ctx context.Context, u string, der []byte, req *Request) (*Token, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(der))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", QueryMediaType)
	hr.Header.Set("Accept", ReplyMediaType)
	resp, err := c.http.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseSize+1))
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != ReplyMediaType {
		return nil, fmt.Errorf("%w: answered Content-Type %q, want %s", ErrMalformed, ct, ReplyMediaType)
	}
	tok, err := ParseResponse(body)
	if err != nil {
		return nil, err
	}
	if err := req.Check(tok); err != nil {
		return nil, err
	}
	if err := tok.VerifySigner(c.roots); err != nil {
		return nil, err
	}
	return tok, nil
}
