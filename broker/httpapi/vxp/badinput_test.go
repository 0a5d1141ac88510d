package vxp_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/docaxis/docaxis/broker/httpapi/vxp"
)

// Every bad input gets the protocol's failure answer and stores nothing.
func TestBadInput(t *testing.T) {
	b := newBench(t, false)
	secA := b.addSystem("sys.a", edocFrom)
	secB := b.addSystem("sys.b", edocTo)
	b.addSystem("sys.gone")
	if err := b.admin.RemoveSystem(ctxT(t), "sys.gone"); err != nil {
		t.Fatal(err)
	}
	file := testdata(t, "edoc.edxml")
	sendHdr := map[string]any{"from": edocFrom, "servicetype": "eDoc", "messagetype": "edoc"}

	cases := []struct {
		name string
		code string
		run  func() map[string]any
	}{
		{"wrong secret", "401", func() map[string]any { return b.sdk("sys.a", secB).sendEdoc(sendHdr, file) }},
		{"unknown system", "401", func() map[string]any { return b.sdk("sys.nobody", secA).sendEdoc(sendHdr, file) }},
		{"removed system", "401", func() map[string]any { return b.sdk("sys.gone", secA).call("getReceivedEdocList", listEdoc, nil) }},
		{"path in the system id", "401", func() map[string]any { return b.sdk("../sys.a", secA).call("getAgenciesList", nil, nil) }},
		{"foreign from", "403", func() map[string]any {
			return b.sdk("sys.a", secA).sendEdoc(map[string]any{"from": edocTo, "messagetype": "edoc"}, file)
		}},
		{"foreign edXML sender", "403", func() map[string]any {
			return b.sdk("sys.b", secB).sendEdoc(map[string]any{"from": "sys.b", "messagetype": "edoc"}, file)
		}},
		{"not edXML", "400", func() map[string]any {
			return b.sdk("sys.a", secA).sendEdoc(sendHdr, []byte("hello, this is not XML"))
		}},
		{"hash-file of another body", "400", func() map[string]any {
			c := b.sdk("sys.a", secA)
			c.m.put("hash-file", vxp.HashFile([]byte("other")))
			c.m.put("Content-Type", "application/octet-stream")
			c.jsonHeaders(sendHdr, true)
			return c.do(c.request(http.MethodPost, "sendEdoc", append(file, '\r', '\n')))
		}},
		{"no hash-file", "400", func() map[string]any {
			c := b.sdk("sys.a", secA)
			c.jsonHeaders(sendHdr, true)
			return c.do(c.request(http.MethodPost, "sendEdoc", file))
		}},
		{"oversized sendEdoc", "413", func() map[string]any {
			return b.sdk("sys.a", secA).sendEdoc(sendHdr, bytes.Repeat([]byte("x"), 5<<20))
		}},
		{"oversized getEdoc body", "413", func() map[string]any {
			return b.sdk("sys.a", secA).call("getEdoc", map[string]any{"docId": "x"}, bytes.Repeat([]byte("{"), 2<<20))
		}},
		{"unknown operation", "404", func() map[string]any { return b.sdk("sys.a", secA).call("dropAll", nil, nil) }},
		{"GET sendEdoc", "405", func() map[string]any {
			c := b.sdk("sys.a", secA)
			return c.do(c.request(http.MethodGet, "sendEdoc", nil))
		}},
		{"bad messagetype", "400", func() map[string]any {
			return b.sdk("sys.a", secA).call("getReceivedEdocList", map[string]any{"messagetype": "all"}, nil)
		}},
		{"getEdoc unknown docId", "404", func() map[string]any {
			return b.sdk("sys.a", secA).call("getEdoc", map[string]any{"docId": "01a24205-771e-710f-88ed-9dbe050f8250"}, []byte("{}"))
		}},
		{"getEdoc no docId", "400", func() map[string]any {
			return newSDK(t, b.http.URL+"/vxp", "sys.a", secA).call("getEdoc", nil, []byte("{}"))
		}},
		{"updateStatus bad status", "400", func() map[string]any {
			return b.sdk("sys.a", secA).call("updateStatus", map[string]any{"status": "gone", "docId": "01a24205-771e-710f-88ed-9dbe050f8250"}, []byte("{}"))
		}},
		{"registerAgency turned off", "403", func() map[string]any {
			return b.sdk("sys.a", secA).call("registerAgency", nil, []byte(`{"code":"000.01.02.H13","name":"X"}`))
		}},
		{"deleteAgency turned off", "403", func() map[string]any {
			return b.sdk("sys.a", secA).call("deleteAgency", map[string]any{"AgencyCode": edocFrom}, []byte("{}"))
		}},
		{"bad level", "400", func() map[string]any {
			return b.sdk("sys.a", secA).call("getAgenciesListQD20", map[string]any{"level": "top"}, nil)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.run()
			mustFail(t, tc.name, a, tc.code)
		})
	}
	// Nothing was sent by anyone.
	for _, code := range []string{edocFrom, edocTo} {
		if sent, err := b.admin.Sent(ctxT(t), code); err != nil || len(sent) != 0 {
			t.Fatalf("%s sent %v (%v)", code, sent, err)
		}
	}
	// And it all shows on /metrics.
	if n := requests(t, b, "sendEdoc", "401"); n != 2 {
		t.Fatalf("sendEdoc 401 counted %v times", n)
	}
}

// requests reads docaxis_vxp_requests_total{operation=op,code=code}.
func requests(t *testing.T, b *bench, op, code string) float64 {
	t.Helper()
	mfs, err := b.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "docaxis_vxp_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["operation"] == op && labels["code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// Unsigned and tampered requests, with raw HTTP.
func TestUnsignedAndTampered(t *testing.T) {
	b := newBench(t, false)
	sec := b.addSystem("sys.a", edocFrom)
	c := b.sdk("sys.a", sec)

	req := c.request(http.MethodPost, "getAgenciesList", nil)
	delete(req.Header, "XroadVnpt-sign-header")
	mustFail(t, "unsigned", c.do(req), "401")

	req = c.request(http.MethodPost, "getAgenciesList", nil)
	req.Header["XroadVnpt-sign-header"] = []string{strings.Replace(req.Header["XroadVnpt-sign-header"][0], "sys.a", "sys.b", 1)}
	mustFail(t, "tampered", c.do(req), "401")

	req = c.request(http.MethodPost, "getAgenciesList", nil)
	req.Header["XroadVnpt-systemid"] = []string{"sys.b"}
	mustFail(t, "header differs from the signed", c.do(req), "401")

	// Rotated: the old secret stops, the new one works.
	mustOK(t, "before rotation", c.call("getAgenciesList", nil, nil))
	fresh := b.rotate("sys.a")
	mustFail(t, "old secret", c.call("getAgenciesList", nil, nil), "401")
	mustOK(t, "new secret", b.sdk("sys.a", fresh).call("getAgenciesList", nil, nil))
	// Revoked with the system: no secret file, no access.
	if err := os.Remove(vxp.SecretPath(b.bus.Keystore, "sys.a")); err != nil {
		t.Fatal(err)
	}
	mustFail(t, "removed secret", b.sdk("sys.a", fresh).call("getAgenciesList", nil, nil), "401")
}

// The transport: a doubled slash, Expect: 100-continue, keep-alive.
func TestTransport(t *testing.T) {
	b := newBench(t, false)
	sec := b.addSystem("sys.a", edocFrom)
	// A DMS whose endpoint ends with '/': //getAgenciesList.
	c := newSDK(t, b.http.URL+"/vxp/", "sys.a", sec)
	items := list(mustOK(t, "doubled slash", c.call("getAgenciesList", nil, nil)))
	if len(items) != 1 || items[0]["code"] != edocFrom {
		t.Fatalf("agencies: %v", items)
	}

	// Expect: 100-continue, as Apache HttpClient sends it: the server
	// says 100 Continue before the body is sent.
	req := c.request(http.MethodPost, "getEdoc", []byte("{}"))
	conn, err := net.Dial("tcp", strings.TrimPrefix(b.http.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: Keep-Alive\r\n", req.URL.Path)
	for k, v := range req.Header {
		fmt.Fprintf(conn, "%s: %s\r\n", k, v[0])
	}
	fmt.Fprint(conn, "\r\n")
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	if err != nil || !strings.Contains(line, "100 Continue") {
		t.Fatalf("want 100 Continue first, got %q (%v)", line, err)
	}
	if _, err := br.ReadString('\n'); err != nil { // the blank line after 100
		t.Fatal(err)
	}
	fmt.Fprint(conn, "{}")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"ErrorCode":"400"`) { // no docId: a clear failure, on a live connection
		t.Fatalf("answer %s", body)
	}
}
