package s3_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/docaxis/docaxis/storage/s3"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		env     map[string]string
		want    s3.Config
		wantErr string // substring of the error; "" for success
	}{
		{
			name: "keys in URL",
			raw:  "http://AKID:s3cr3t@127.0.0.1:9000/attachments",
			want: s3.Config{Endpoint: "127.0.0.1:9000", Bucket: "attachments", AccessKey: "AKID", SecretKey: "s3cr3t"},
		},
		{
			name: "https, region, trailing slash",
			raw:  "https://AKID:s3cr3t@s3.eu-west-3.amazonaws.com/docaxis-prod/?region=eu-west-3",
			want: s3.Config{Endpoint: "s3.eu-west-3.amazonaws.com", Bucket: "docaxis-prod", AccessKey: "AKID", SecretKey: "s3cr3t", Secure: true, Region: "eu-west-3"},
		},
		{
			name: "percent-encoded secret",
			raw:  "http://AKID:a%2Fb%40c%3Ad@minio:9000/b01",
			want: s3.Config{Endpoint: "minio:9000", Bucket: "b01", AccessKey: "AKID", SecretKey: "a/b@c:d"},
		},
		{
			name: "IPv6 host",
			raw:  "http://k:s@[::1]:9000/bucket",
			want: s3.Config{Endpoint: "[::1]:9000", Bucket: "bucket", AccessKey: "k", SecretKey: "s"},
		},
		{
			name: "no port",
			raw:  "https://k:s@storage.example.gov/bucket",
			want: s3.Config{Endpoint: "storage.example.gov", Bucket: "bucket", AccessKey: "k", SecretKey: "s", Secure: true},
		},
		{
			name: "upper-case scheme",
			raw:  "HTTP://k:s@host:80/bucket",
			want: s3.Config{Endpoint: "host:80", Bucket: "bucket", AccessKey: "k", SecretKey: "s"},
		},
		{
			name: "keys from environment",
			raw:  "http://127.0.0.1:9000/attachments",
			env:  map[string]string{"AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "envsecret", "AWS_SESSION_TOKEN": "tok"},
			want: s3.Config{Endpoint: "127.0.0.1:9000", Bucket: "attachments", AccessKey: "ENVKEY", SecretKey: "envsecret", SessionToken: "tok"},
		},
		{
			name: "URL keys win over environment",
			raw:  "http://k:s@host/bucket",
			env:  map[string]string{"AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "envsecret"},
			want: s3.Config{Endpoint: "host", Bucket: "bucket", AccessKey: "k", SecretKey: "s"},
		},
		{name: "no keys anywhere", raw: "http://host:9000/bucket", wantErr: "AWS_ACCESS_KEY_ID"},
		{name: "env secret missing", raw: "http://host:9000/bucket", env: map[string]string{"AWS_ACCESS_KEY_ID": "k"}, wantErr: "no keys"},
		{name: "access key only", raw: "http://k@host:9000/bucket", wantErr: "no secret key"},
		{name: "empty secret", raw: "http://k:@host:9000/bucket", wantErr: "no secret key"},
		{name: "empty access key", raw: "http://:s@host:9000/bucket", wantErr: "empty access key"},
		{name: "no bucket", raw: "http://k:s@host:9000", wantErr: "no bucket"},
		{name: "root path", raw: "http://k:s@host:9000/", wantErr: "no bucket"},
		{name: "prefix after bucket", raw: "http://k:s@host:9000/bucket/prefix", wantErr: "no prefix"},
		{name: "encoded slash in bucket", raw: "http://k:s@host:9000/buc%2Fket", wantErr: "no prefix"},
		{name: "invalid bucket name", raw: "http://k:s@host:9000/Bad_Bucket", wantErr: "bucket \"Bad_Bucket\""},
		{name: "bucket too short", raw: "http://k:s@host:9000/ab", wantErr: "bucket \"ab\""},
		{name: "s3 scheme", raw: "s3://k:s@host:9000/bucket", wantErr: "scheme \"s3\""},
		{name: "ftp scheme", raw: "ftp://k:s@host/bucket", wantErr: "want http or https"},
		{name: "no scheme", raw: "k:s@host:9000/bucket", wantErr: "scheme"},
		{name: "bare host", raw: "host:9000", wantErr: "scheme \"host\""},
		{name: "empty", raw: "", wantErr: "no scheme"},
		{name: "no host", raw: "http:///bucket", wantErr: "no host"},
		{name: "port only", raw: "http://k:s@:9000/bucket", wantErr: "no host"},
		{name: "opaque", raw: "http:bucket", wantErr: "want http://"},
		{name: "bad port", raw: "http://k:s@host:99999/bucket", wantErr: "port"},
		{name: "port zero", raw: "http://k:s@host:0/bucket", wantErr: "port"},
		{name: "non-numeric port", raw: "http://k:s@host:http/bucket", wantErr: "port"},
		{name: "empty port", raw: "http://k:s@host:/bucket", wantErr: "empty port"},
		{name: "unknown parameter", raw: "http://k:s@host/bucket?regoin=x", wantErr: "unknown parameter \"regoin\""},
		{name: "empty region", raw: "http://k:s@host/bucket?region=", wantErr: "region"},
		{name: "two regions", raw: "http://k:s@host/bucket?region=a&region=b", wantErr: "region"},
		{name: "bad query", raw: "http://k:s@host/bucket?region=%zz", wantErr: "query"},
		{name: "fragment", raw: "http://k:s@host/bucket#frag", wantErr: "fragment"},
		{name: "control character", raw: "http://k:s@host/buc\x7fket", wantErr: "s3 URL"},
		{name: "space in host", raw: "http://k:s@ho st/bucket", wantErr: "s3 URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{s3.EnvAccessKey, s3.EnvSecretKey, s3.EnvSessionToken} {
				t.Setenv(k, tt.env[k])
			}
			got, err := s3.ParseURL(tt.raw)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseURL(%q) = %+v, want an error saying %q", tt.raw, got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("ParseURL(%q): error %q does not say %q", tt.raw, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseURL(%q): %v", tt.raw, err)
			}
			if got != tt.want {
				t.Errorf("ParseURL(%q) =\n %#v\nwant\n %#v", tt.raw, got, tt.want)
			}
		})
	}
}

// TestParseURLHidesSecret: neither errors nor String repeat the secret.
func TestParseURLHidesSecret(t *testing.T) {
	const secret = "TOPSECRETvalue"
	for _, raw := range []string{
		"http://k:" + secret + "@host:99999/bucket",
		"http://k:" + secret + "@host:9000/Bad_Bucket",
		"http://k:" + secret + "@ho st/bucket",
		"http://k:" + secret + "@host/bucket?x=1",
		"ftp://k:" + secret + "@host/bucket",
	} {
		_, err := s3.ParseURL(raw)
		if err == nil {
			t.Fatalf("ParseURL(%q) succeeded", raw)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error for %q shows the secret: %v", raw, err)
		}
	}
	cfg, err := s3.ParseURL("https://k:" + secret + "@host/bucket?region=r")
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.String(); strings.Contains(s, secret) || s != "https://k@host/bucket?region=r" {
		t.Errorf("String() = %q, want https://k@host/bucket?region=r", s)
	}
}

func FuzzParseURL(f *testing.F) {
	for _, seed := range []string{
		"http://AKID:s3cr3t@127.0.0.1:9000/attachments",
		"https://k:s@s3.amazonaws.com/bucket/?region=eu-west-3",
		"http://k:a%2Fb@[::1]:9000/b01",
		"http://host/bucket",
		"http://k:s@host:0/bucket",
		"s3://k:s@host/bucket",
		"http://k:s@host/bucket/prefix#x",
		"",
	} {
		f.Add(seed)
	}
	f.Setenv(s3.EnvAccessKey, "")
	f.Setenv(s3.EnvSecretKey, "")
	f.Setenv(s3.EnvSessionToken, "")
	f.Fuzz(func(t *testing.T, raw string) {
		cfg, err := s3.ParseURL(raw)
		if err != nil {
			if cfg.SecretKey != "" && len(cfg.SecretKey) >= 6 && strings.Contains(err.Error(), cfg.SecretKey) {
				t.Errorf("error shows the secret: %v", err)
			}
			return
		}
		if cfg.Endpoint == "" || cfg.Bucket == "" || cfg.AccessKey == "" || cfg.SecretKey == "" {
			t.Fatalf("ParseURL(%q) = %+v: a field is empty", raw, cfg)
		}
		// What parsed must print and parse back the same.
		u := url.URL{Scheme: "http", User: url.UserPassword(cfg.AccessKey, cfg.SecretKey), Host: cfg.Endpoint, Path: "/" + cfg.Bucket}
		if cfg.Secure {
			u.Scheme = "https"
		}
		if cfg.Region != "" {
			u.RawQuery = url.Values{"region": {cfg.Region}}.Encode()
		}
		again, err := s3.ParseURL(u.String())
		if err != nil {
			t.Fatalf("ParseURL(%q) = %+v, but its URL %q does not parse: %v", raw, cfg, u.String(), err)
		}
		if again != cfg {
			t.Fatalf("round trip of %q: %+v, then %+v", raw, cfg, again)
		}
	})
}
