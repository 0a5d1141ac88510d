package pdf

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/digitorus/timestamp"
)

// pdfsign v0.9.0 calls the TSA with its own http.Client: no context, no
// timeout, no response size limit, and it embeds whatever token comes back
// without checking that it covers the signature. So pdfsign is pointed at a
// relay on loopback, alive for one Sign call, that forwards each request
// under the caller's context, bounds the answer, and checks it before
// pdfsign sees it.

const maxTSAResponse = 1 << 20

type tsaRelay struct {
	url    string // what pdfsign calls
	srv    *http.Server
	answer func(req []byte) ([]byte, error)

	mu  sync.Mutex
	err error // first failure, reported by Sign instead of pdfsign's
}

// startTSARelay relays to the TSA at raw.
func startTSARelay(ctx context.Context, raw string) (*tsaRelay, error) {
	u, err := parseTSAURL(raw)
	if err != nil {
		return nil, err
	}
	return startRelay(func(req []byte) ([]byte, error) { return tsaExchange(ctx, u, req) })
}

// startPlaceholderTSA answers every request with a token of a throwaway
// key. It only makes pdfsign reserve room for a timestamp in a signature
// that is then replaced (see signMasked).
func startPlaceholderTSA() (*tsaRelay, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "docaxis placeholder TSA"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return startRelay(func(body []byte) ([]byte, error) {
		req, err := timestamp.ParseRequest(body)
		if err != nil {
			return nil, err
		}
		ts := &timestamp.Timestamp{
			HashAlgorithm:     req.HashAlgorithm,
			HashedMessage:     req.HashedMessage,
			Time:              time.Now(),
			Policy:            asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 0},
			AddTSACertificate: true,
		}
		return ts.CreateResponseWithOpts(cert, key, crypto.SHA256)
	})
}

func startRelay(answer func([]byte) ([]byte, error)) (*tsaRelay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("%w: start the loopback relay for pdfsign: %v", ErrTimestamp, err)
	}
	r := &tsaRelay{answer: answer, url: "http://" + ln.Addr().String() + "/"}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *tsaRelay) close() { _ = r.srv.Close() }

func (r *tsaRelay) failure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (r *tsaRelay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 64<<10))
	var resp []byte
	if err == nil {
		resp, err = r.answer(body)
	}
	if err != nil {
		r.mu.Lock()
		if r.err == nil {
			r.err = err
		}
		r.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/timestamp-reply")
	_, _ = w.Write(resp)
}

func parseTSAURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: TSA URL %q is not http(s)://host/...", ErrTimestamp, raw)
	}
	return u, nil
}

// tsaExchange posts the DER request body to the TSA and returns its
// response after checking that it grants a token for the same imprint.
func tsaExchange(ctx context.Context, u *url.URL, body []byte) ([]byte, error) {
	where := u.Redacted()
	tsReq, err := timestamp.ParseRequest(body)
	if err != nil {
		return nil, fmt.Errorf("%w: bad request for %s: %v", ErrTimestamp, where, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, TSATimeout)
		defer cancel()
	}
	up := *u
	up.User = nil
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, up.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrTimestamp, where, err)
	}
	hreq.Header.Set("Content-Type", "application/timestamp-query")
	if u.User != nil {
		pw, _ := u.User.Password()
		hreq.SetBasicAuth(u.User.Username(), pw)
	}
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrTimestamp, where, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxTSAResponse+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: read response: %w", ErrTimestamp, where, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%w: %s answered %s: %.200q", ErrTimestamp, where, resp.Status, data)
	}
	if len(data) > maxTSAResponse {
		return nil, fmt.Errorf("%w: %s: response larger than %d bytes", ErrTimestamp, where, maxTSAResponse)
	}
	ts, err := timestamp.ParseResponse(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrTimestamp, where, err)
	}
	if ts.HashAlgorithm != tsReq.HashAlgorithm || !bytes.Equal(ts.HashedMessage, tsReq.HashedMessage) {
		return nil, fmt.Errorf("%w: %s: token is for other data than requested", ErrTimestamp, where)
	}
	return data, nil
}

// timestampToken asks the TSA at u for a token over sig, as pdfsign does.
func timestampToken(ctx context.Context, u *url.URL, sig []byte, h crypto.Hash) ([]byte, error) {
	req, err := timestamp.CreateRequest(bytes.NewReader(sig), &timestamp.RequestOptions{Hash: h, Certificates: true})
	if err != nil {
		return nil, fmt.Errorf("%w: create request: %v", ErrTimestamp, err)
	}
	resp, err := tsaExchange(ctx, u, req)
	if err != nil {
		return nil, err
	}
	ts, err := timestamp.ParseResponse(resp)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTimestamp, err)
	}
	return ts.RawToken, nil
}
