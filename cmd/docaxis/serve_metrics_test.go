package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMetricsToken(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte("0123456789abcdef0123\n"), 0o600)
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("hunter2"), 0o600)
	tests := []struct {
		name, addr, file string
		want             string // token, or "error"
	}{
		{"off", "", "", ""},
		{"token without a listener", "", good, "error"},
		{"loopback without a token", "127.0.0.1:9464", "", ""},
		{"localhost without a token", "localhost:9464", "", ""},
		{"IPv6 loopback without a token", "[::1]:9464", "", ""},
		{"every interface without a token", ":9464", "", "error"},
		{"public address without a token", "10.0.0.5:9464", "", "error"},
		{"public address with a token", "0.0.0.0:9464", good, "0123456789abcdef0123"},
		{"weak token", "0.0.0.0:9464", short, "error"},
		{"missing token file", "0.0.0.0:9464", filepath.Join(dir, "none"), "error"},
		{"bad address", "9464", "", "error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := metricsToken(tc.addr, tc.file)
			if tc.want == "error" {
				if err == nil {
					t.Fatalf("= %q, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("= %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestMetricsAuth(t *testing.T) {
	const token = "0123456789abcdef0123"
	h := metricsAuth(token, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("figures")) }))
	tests := []struct {
		name, header string
		want         int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"wrong token", "Bearer 0123456789abcdef0124", http.StatusUnauthorized},
		{"prefix of the token", "Bearer 0123456789", http.StatusUnauthorized},
		{"basic scheme", "Basic " + token, http.StatusUnauthorized},
		{"right token", "Bearer " + token, http.StatusOK},
		{"scheme in any case", "bearer " + token, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/metrics", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want || (tc.want == http.StatusOK) != strings.Contains(rec.Body.String(), "figures") {
				t.Fatalf("= %d %q, want %d", rec.Code, rec.Body.String(), tc.want)
			}
		})
	}
}
