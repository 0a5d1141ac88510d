// Package miniotest runs a real MinIO server for tests of the S3 attachment
// store. The server binary is not a Go dependency: `make test` installs it
// into bin/minio at the root of the module.
package miniotest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docaxis/docaxis/internal/freeport"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// EnvBinary names the environment variable that overrides where the MinIO
// binary is looked for.
const EnvBinary = "DOCAXIS_MINIO"

// Timeouts of the harness.
const (
	ReadyTimeout = 30 * time.Second
	StopTimeout  = 10 * time.Second
)

// Server is a running MinIO server on the loopback interface.
type Server struct {
	Endpoint  string // host:port of the S3 API
	AccessKey string
	SecretKey string
	// DataDir is the directory MinIO serves; tests may look at it, but the
	// simpler way to change an object behind a store's back is Client.
	DataDir string

	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{} // closed when the process has exited
	once sync.Once
}

// Start finds the MinIO binary (see FindBinary), starts a server on free
// loopback ports over a fresh t.TempDir(), waits until it is live and ready
// and
// stops it when the test ends. Without a binary the test is skipped, or
// fails when the environment variable CI is "true", since CI must not
// silently skip the S3 tests.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := FindBinary()
	if err != nil {
		msg := fmt.Sprintf("miniotest: %v; run `make test`, which installs it into bin/minio, or set %s", err, EnvBinary)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	api, console := freePort(t), freePort(t)
	s := &Server{
		Endpoint:  net.JoinHostPort("127.0.0.1", strconv.Itoa(api)),
		AccessKey: "docaxis",
		SecretKey: "docaxis-test-secret",
		DataDir:   filepath.Join(dir, "data"),
		log:       &syncBuffer{},
		done:      make(chan struct{}),
	}
	s.cmd = exec.Command(bin, "server", s.DataDir,
		"--address", s.Endpoint,
		"--console-address", net.JoinHostPort("127.0.0.1", strconv.Itoa(console)),
		"--quiet")
	s.cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	setProcAttr(s.cmd)
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("miniotest: start %s: %v", bin, err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	// Registered after TempDir, so it runs first: the server is gone
	// before its directory is removed.
	t.Cleanup(s.Stop)
	if err := s.waitLive(); err != nil {
		s.Stop()
		t.Fatalf("miniotest: %v\nserver output:\n%s", err, s.log.String())
	}
	return s
}

// FindBinary returns the MinIO server binary: $DOCAXIS_MINIO, else bin/minio
// in the nearest directory above the working directory that holds go.mod,
// else minio in PATH.
func FindBinary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("MinIO binary %s=%s: %w", EnvBinary, p, err)
		}
		return p, nil
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				p := filepath.Join(dir, "bin", "minio")
				if _, err := os.Stat(p); err == nil {
					return p, nil
				}
				break
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	p, err := exec.LookPath("minio")
	if err != nil {
		return "", errors.New("MinIO server binary not found (not in $" + EnvBinary + ", bin/minio of the module, nor PATH)")
	}
	return p, nil
}

// URL returns the docaxis S3 store URL of bucket on this server, with the
// keys in it.
func (s *Server) URL(bucket string) string {
	u := url.URL{
		Scheme: "http",
		User:   url.UserPassword(s.AccessKey, s.SecretKey),
		Host:   s.Endpoint,
		Path:   "/" + bucket,
	}
	return u.String()
}

// Client returns a plain minio-go client of the server, for tests that
// inspect or change buckets behind a store's back.
func (s *Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := minio.New(s.Endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
	})
	if err != nil {
		t.Fatalf("miniotest: client of %s: %v", s.Endpoint, err)
	}
	return c
}

// Stop terminates the server (SIGTERM, then SIGKILL after StopTimeout) and
// waits for it to exit. It is safe to call more than once; tests call it to
// make the store unreachable.
func (s *Server) Stop() {
	s.once.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(StopTimeout):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
}

// waitLive polls /minio/health/live and /minio/health/ready, then makes
// signed requests until one succeeds: a live, even ready, server may not
// have its IAM subsystem up yet and answers "Server not initialized yet" to
// requests that minio-go does not retry (bucket location lookups).
func (s *Server) waitLive() error {
	ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for _, probe := range []string{"live", "ready"} {
		u := "http://" + s.Endpoint + "/minio/health/" + probe
		for {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
				err = errors.New(resp.Status)
			}
			select {
			case <-s.done:
				return fmt.Errorf("server exited before it was %s (%v)", probe, s.cmd.ProcessState)
			case <-ctx.Done():
				return fmt.Errorf("server not %s at %s after %s (last: %v)", probe, u, ReadyTimeout, err)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	c, err := minio.New(s.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		MaxRetries: 1,
	})
	if err != nil {
		return err
	}
	for {
		_, err := c.GetBucketLocation(ctx, "readiness-probe")
		if err == nil || minio.ToErrorResponse(err).Code == minio.NoSuchBucket {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("server exited before it was initialized (%v)", s.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("server not initialized after %s (last: %v)", ReadyTimeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freePort picks a loopback port no outgoing connection can take before
// MinIO binds it (freeport).
func freePort(t testing.TB) int {
	t.Helper()
	p, err := freeport.Port()
	if err != nil {
		t.Fatalf("miniotest: find a free port: %v", err)
	}
	return p
}

// syncBuffer collects the server's output for error messages.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
