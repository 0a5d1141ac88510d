package vxp_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/docaxis/docaxis/broker/httpapi/vxp"
	"github.com/docaxis/docaxis/envelope"
)

// Identical signed sendEdoc calls at once (the SDK's retry of a POST, or a
// replay) send one document: each answers OK with its DocId.
func TestIdenticalSendEdocCallsSendOnce(t *testing.T) {
	b := newBench(t, false)
	a := b.sdk("sys.a", b.addSystem("sys.a", edocFrom))
	b.addSystem("sys.b", edocTo)
	file := testdata(t, "edoc.edxml")
	// The SDK's request built from the same map: byte-identical calls.
	a.jsonHeaders(map[string]any{"from": edocFrom, "servicetype": "eDoc", "messagetype": "edoc"}, true)
	a.m.put("Content-Type", "application/octet-stream")
	a.m.put("hash-file", vxp.HashFile(file))
	body := append(append([]byte{}, file...), '\r', '\n')
	answers := make([]map[string]any, 4)
	var wg sync.WaitGroup
	for i := range answers {
		req := a.request(http.MethodPost, "sendEdoc", body)
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if err := json.Unmarshal(raw, &answers[i]); err != nil {
				t.Errorf("answer %q: %v", raw, err)
			}
		}()
	}
	wg.Wait()
	ids := map[string]bool{}
	for _, ans := range answers {
		mustOK(t, "sendEdoc", ans)
		ids[fmt.Sprint(ans["DocId"])] = true
	}
	if len(ids) != 1 {
		t.Fatalf("%d identical signed sendEdoc calls sent %d documents: %v", len(answers), len(ids), answers)
	}
	for id := range ids {
		waitState(t, b.admin, id, edocTo, envelope.StateSent)
	}
}

// A signed sendEdoc call that sent nothing (refused) is not remembered:
// asked again once it can pass, it sends.
func TestSendEdocAskedAgainAfterAFailureSends(t *testing.T) {
	b := newBench(t, false)
	a := b.sdk("sys.a", b.addSystem("sys.a"))
	b.addSystem("sys.b", edocTo)
	file := testdata(t, "edoc.edxml")
	h := map[string]any{"from": edocFrom, "servicetype": "eDoc", "messagetype": "edoc"}
	mustFail(t, "sendEdoc for an agency not served yet", a.sendEdoc(h, file), vxp.CodeForbidden)
	b.serve("sys.a", edocFrom)
	id := fmt.Sprint(mustOK(t, "sendEdoc asked again", a.sendEdoc(h, file))["DocId"])
	if !envelope.IsID(id) {
		t.Fatalf("DocId %q", id)
	}
	waitState(t, b.admin, id, edocTo, envelope.StateSent)
}
