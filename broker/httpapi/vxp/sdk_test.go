package vxp_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sdk is a client written from PROTOCOL.md, doing what SDKVXP 2.0.1 does
// on the wire: one map per service object, never cleared (keys of every
// earlier call travel again); the timestamp frozen at construction; the
// map in Java HashMap order; the signed header in Gson's compact form;
// sendEdoc's body with a trailing CRLF and the lossy hash-file.
type sdk struct {
	t        testing.TB
	endpoint string
	hc       *http.Client
	m        *javaMap
	secret   string
}

func newSDK(t testing.TB, endpoint, systemID, secret string) *sdk {
	m := newJavaMap()
	m.put("systemid", systemID)
	// ddMMyyyy'T'HHmmss+SSSS: '+' literal, milliseconds on 4 digits.
	now := time.Now()
	m.put("timestamp", now.Format("02012006T150405")+fmt.Sprintf("+%04d", now.Nanosecond()/1e6))
	return &sdk{t: t, endpoint: endpoint, hc: &http.Client{}, m: m, secret: secret}
}

// javaMap iterates as java.util.HashMap does: by bucket of the spread
// String.hashCode, insertion order within a bucket, the table doubling
// past 3/4 full.
type javaMap struct {
	keys []string
	vals map[string]string
}

func newJavaMap() *javaMap { return &javaMap{vals: map[string]string{}} }

func (m *javaMap) put(k, v string) {
	if _, ok := m.vals[k]; !ok {
		m.keys = append(m.keys, k)
	}
	m.vals[k] = v
}

func javaHash(s string) int32 {
	var h int32
	for _, r := range s { // the keys are ASCII: UTF-16 units are runes
		h = 31*h + int32(r)
	}
	return h
}

func (m *javaMap) order() []string {
	n := 16
	for float64(len(m.keys)) > 0.75*float64(n) {
		n *= 2
	}
	buckets := make([][]string, n)
	for _, k := range m.keys {
		h := uint32(javaHash(k))
		h ^= h >> 16
		i := int(h & uint32(n-1))
		buckets[i] = append(buckets[i], k)
	}
	var out []string
	for _, b := range buckets {
		out = append(out, b...)
	}
	return out
}

// gsonString writes s as Gson 2.2 does without HTML escaping.
func gsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20, r == 0x2028, r == 0x2029:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// jsonHeaders copies a DMS's JSON header into the map (getAsString of
// each value; sendEdoc keeps "to" as JSON text).
func (c *sdk) jsonHeaders(h map[string]any, sendEdoc bool) {
	for k, v := range h {
		switch x := v.(type) {
		case string:
			if sendEdoc && k == "to" {
				b, _ := json.Marshal(x)
				c.m.put(k, string(b))
			} else {
				c.m.put(k, x)
			}
		default:
			b, _ := json.Marshal(x)
			c.m.put(k, string(b))
		}
	}
}

// request builds the request the SDK sends.
func (c *sdk) request(method, op string, body []byte) *http.Request {
	c.t.Helper()
	req, err := http.NewRequest(method, c.endpoint+"/"+op, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if len(body) == 0 {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	order := c.m.order()
	var sign strings.Builder
	sign.WriteByte('{')
	for i, k := range order {
		v := c.m.vals[k]
		if k == "Content-Type" {
			req.Header["Content-Type"] = []string{v}
		}
		req.Header["XroadVnpt-"+k] = []string{v}
		if i > 0 {
			sign.WriteByte(',')
		}
		sign.WriteString(gsonString("XroadVnpt-"+k) + ":" + gsonString(v))
	}
	sign.WriteByte('}')
	mac := hmac.New(sha256.New, []byte(c.secret))
	mac.Write([]byte(sign.String()))
	req.Header["XroadVnpt-sign-header-key"] = []string{strings.Join(order, ";")}
	req.Header["XroadVnpt-sign-header"] = []string{sign.String()}
	req.Header["XroadVnpt-hash-header"] = []string{hex.EncodeToString(mac.Sum(nil))}
	req.Header["User-Agent"] = []string{"JAVASDKAgent/1.0.0 XRoad/VPCP"}
	req.Header["XroadVnpt-version"] = []string{"3.0.201608"}
	return req
}

// call runs op with the DMS's JSON header and returns the answer.
func (c *sdk) call(op string, h map[string]any, body []byte) map[string]any {
	c.t.Helper()
	c.jsonHeaders(h, false)
	c.m.put("Content-Type", "application/json")
	method := http.MethodPost
	if op == "downloadEdoc" {
		method = http.MethodGet
	}
	return c.do(c.request(method, op, body))
}

// sendEdoc sends a file as the SDK does.
func (c *sdk) sendEdoc(h map[string]any, file []byte) map[string]any {
	c.t.Helper()
	c.jsonHeaders(h, true)
	c.m.put("Content-Type", "application/octet-stream")
	sum := sha256.Sum256(file)
	var lossy strings.Builder
	for _, b := range sum {
		lossy.WriteString(strconv.FormatInt(int64(b), 16))
	}
	c.m.put("hash-file", lossy.String())
	req := c.request(http.MethodPost, "sendEdoc", append(append([]byte{}, file...), '\r', '\n'))
	req.Header["Cache-Control"] = []string{"no-cache"}
	req.Header["Pragma"] = []string{"no-cache"}
	return c.do(req)
}

func (c *sdk) do(req *http.Request) map[string]any {
	c.t.Helper()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	// The SDK joins the lines without newlines.
	joined := strings.ReplaceAll(strings.ReplaceAll(string(b), "\r", ""), "\n", "")
	var out map[string]any
	if err := json.Unmarshal([]byte(joined), &out); err != nil {
		c.t.Fatalf("%s: answer is not JSON: %v: %q", req.URL.Path, err, b)
	}
	for _, k := range []string{"status", "ErrorCode", "ErrorDesc"} {
		if _, ok := out[k]; !ok {
			c.t.Fatalf("%s: answer lacks %s: %s", req.URL.Path, k, b)
		}
	}
	if strings.HasSuffix(req.URL.Path, "/sendEdoc") {
		if _, ok := out["DocId"]; !ok {
			c.t.Fatalf("sendEdoc answer lacks DocId: %s", b)
		}
		for _, r := range string(b) {
			if r > 0x7f {
				c.t.Fatalf("sendEdoc answer is not US-ASCII: %s", b)
			}
		}
	}
	return out
}

// mustOK fails unless a is status OK, ErrorCode 0.
func mustOK(t testing.TB, op string, a map[string]any) map[string]any {
	t.Helper()
	if a["status"] != "OK" || fmt.Sprint(a["ErrorCode"]) != "0" {
		t.Fatalf("%s: %v", op, a)
	}
	return a
}

// mustFail fails unless a is a FAIL with code.
func mustFail(t testing.TB, op string, a map[string]any, code string) {
	t.Helper()
	if a["status"] != "FAIL" || fmt.Sprint(a["ErrorCode"]) != code || fmt.Sprint(a["ErrorDesc"]) == "" {
		t.Fatalf("%s: want FAIL %s, got %v", op, code, a)
	}
}

func list(a map[string]any) []map[string]any {
	raw, _ := a["data"].([]any)
	out := make([]map[string]any, 0, len(raw))
	for _, x := range raw {
		m, _ := x.(map[string]any)
		out = append(out, m)
	}
	return out
}
