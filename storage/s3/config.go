package s3

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// Defaults of Config.
const (
	// DefaultPartSize is the size of a multipart upload part, and so of
	// each upload buffer. With S3's limit of 10,000 parts it caps an
	// attachment at 156 GiB.
	DefaultPartSize = 8 << 20
	// DefaultConcurrency is the number of parts of one Put in flight. One
	// part at a time keeps a 5 GiB upload under 50 MiB of RSS: minio-go's
	// request signing makes garbage as it sends, so the Go heap settles
	// near twice the live buffers (2 x 16 MiB parts measured 79 MiB).
	// Raise it for high-latency links, where overlapping reading and
	// sending pays.
	DefaultConcurrency = 1
	// DefaultMaxRetries is the number of attempts of each request.
	DefaultMaxRetries = 5
	// DefaultDialTimeout bounds connecting to the endpoint.
	DefaultDialTimeout = 5 * time.Second
	// DefaultResponseTimeout bounds the wait for response headers once a
	// request is sent. It is generous because the completion of a large
	// multipart upload answers only once the server has assembled it.
	DefaultResponseTimeout = 5 * time.Minute
)

// Environment variables read by ParseURL when the URL carries no keys.
const (
	EnvAccessKey    = "AWS_ACCESS_KEY_ID"
	EnvSecretKey    = "AWS_SECRET_ACCESS_KEY"
	EnvSessionToken = "AWS_SESSION_TOKEN"
)

// Config configures an S3 store. The zero values of the tuning fields mean
// the defaults above.
type Config struct {
	Endpoint     string // host or host:port
	Bucket       string
	AccessKey    string
	SecretKey    string
	SessionToken string // optional, for temporary credentials
	Secure       bool   // https
	Region       string // optional; the server's default when empty

	// PartSize is the multipart part size, at least 5 MiB. A Put holds
	// Concurrency buffers of PartSize bytes, whatever the object's size.
	PartSize uint64
	// Concurrency is the number of parts of one Put buffered at once: with
	// more than one, the next part is read while the others are sent.
	Concurrency int
	// MaxRetries is the number of attempts of each request (a part, the
	// address, a stat) on a network error, a 5xx status or a throttling code,
	// with jittered exponential backoff from 200 ms, capped at 1 s between
	// attempts. A retry resends a buffered part: the caller's reader is
	// never read twice. 1 disables retries.
	MaxRetries int
	// DialTimeout bounds connecting; ResponseTimeout bounds the wait for a
	// response once a request is sent. The caller's context bounds all.
	DialTimeout     time.Duration
	ResponseTimeout time.Duration
	// Transport replaces the HTTP transport (custom TLS roots, proxies);
	// DialTimeout and ResponseTimeout then do not apply.
	Transport http.RoundTripper
}

func (c Config) withDefaults() Config {
	if c.PartSize == 0 {
		c.PartSize = DefaultPartSize
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.ResponseTimeout == 0 {
		c.ResponseTimeout = DefaultResponseTimeout
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Endpoint == "":
		return errors.New("s3: no endpoint")
	case c.AccessKey == "" || c.SecretKey == "":
		return errors.New("s3: no credentials")
	case c.PartSize < 5<<20 || c.PartSize > 5<<30:
		return fmt.Errorf("s3: part size %d: want 5 MiB to 5 GiB", c.PartSize)
	case c.Concurrency < 1:
		return fmt.Errorf("s3: concurrency %d: want at least 1", c.Concurrency)
	case c.MaxRetries < 1:
		return fmt.Errorf("s3: max retries %d: want at least 1", c.MaxRetries)
	}
	if err := s3utils.CheckValidBucketNameStrict(c.Bucket); err != nil {
		return fmt.Errorf("s3: bucket %q: %w", c.Bucket, err)
	}
	return nil
}

// String describes the store without its secret key, for logs.
func (c Config) String() string {
	u := url.URL{Scheme: "http", Host: c.Endpoint, Path: "/" + c.Bucket}
	if c.Secure {
		u.Scheme = "https"
	}
	if c.AccessKey != "" {
		u.User = url.User(c.AccessKey)
	}
	if c.Region != "" {
		u.RawQuery = url.Values{"region": {c.Region}}.Encode()
	}
	return u.String()
}

// ParseURL parses a store URL:
//
//	http://ACCESS_KEY:SECRET_KEY@HOST:PORT/BUCKET[?region=REGION]
//
// https:// selects TLS. Keys are percent-encoded like any URL user info.
// Without keys in the URL they are read from AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN). Errors never repeat the
// URL, which may hold a secret.
func ParseURL(raw string) (Config, error) {
	var c Config
	u, err := url.Parse(raw)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // without the URL and its secret
		}
		return c, fmt.Errorf("s3 URL: %w", err)
	}
	switch u.Scheme {
	case "https":
		c.Secure = true
	case "http":
	case "":
		return c, errors.New("s3 URL: no scheme: want http://KEY:SECRET@HOST:PORT/BUCKET or https://...")
	default:
		return c, fmt.Errorf("s3 URL: scheme %q: want http or https", u.Scheme)
	}
	if u.Opaque != "" {
		return c, errors.New("s3 URL: want http://KEY:SECRET@HOST:PORT/BUCKET")
	}
	if u.Hostname() == "" {
		return c, errors.New("s3 URL: no host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return c, fmt.Errorf("s3 URL: port %q: want 1 to 65535", p)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return c, errors.New("s3 URL: empty port")
	}
	c.Endpoint = u.Host

	bucket := strings.TrimPrefix(strings.TrimSuffix(u.Path, "/"), "/")
	switch {
	case bucket == "":
		return c, errors.New("s3 URL: no bucket: want .../BUCKET")
	case strings.Contains(bucket, "/"):
		return c, fmt.Errorf("s3 URL: path %q: want a bucket name alone, no prefix", u.Path)
	}
	if err := s3utils.CheckValidBucketNameStrict(bucket); err != nil {
		return c, fmt.Errorf("s3 URL: bucket %q: %w", bucket, err)
	}
	c.Bucket = bucket

	if u.User != nil {
		c.AccessKey = u.User.Username()
		c.SecretKey, _ = u.User.Password()
		switch {
		case c.AccessKey == "":
			return c, errors.New("s3 URL: empty access key before ':'")
		case c.SecretKey == "":
			return c, errors.New("s3 URL: no secret key: want ACCESS_KEY:SECRET_KEY@")
		}
	} else {
		c.AccessKey, c.SecretKey = os.Getenv(EnvAccessKey), os.Getenv(EnvSecretKey)
		c.SessionToken = os.Getenv(EnvSessionToken)
		if c.AccessKey == "" || c.SecretKey == "" {
			return c, fmt.Errorf("s3 URL: no keys: put ACCESS_KEY:SECRET_KEY@ in the URL or set %s and %s", EnvAccessKey, EnvSecretKey)
		}
	}

	if u.Fragment != "" || strings.Contains(raw, "#") {
		return c, errors.New("s3 URL: unexpected fragment (#)")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return c, fmt.Errorf("s3 URL: query: %w", err)
	}
	for k, v := range q {
		if k != "region" {
			return c, fmt.Errorf("s3 URL: unknown parameter %q: want region", k)
		}
		if len(v) != 1 || v[0] == "" {
			return c, errors.New("s3 URL: want one non-empty region=")
		}
		c.Region = v[0]
	}
	return c, nil
}
