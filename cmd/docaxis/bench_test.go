package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"testing"

	"github.com/docaxis/docaxis/broker/bench"
)

// `docaxis bench` as an operator runs it: a fresh embedded bus with
// authentication on, the agencies on their own credentials, and a result
// that carries every figure. Only that the figures are there is asserted,
// never how large they are.
func TestBenchCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a bus")
	}
	cmd := exec.Command(cliBinary(t), "--home", t.TempDir(), "bench", "--n", "300", "--latency-n", "100", "--rate", "200", "--json")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("docaxis bench: %v\n%s", err, errb.String())
	}
	var res bench.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, out.String())
	}
	if res.N != 300 || res.LatencyN != 100 || res.Target != "embedded" || res.KeyType != "ecdsa" {
		t.Fatalf("result %+v", res)
	}
	for name, v := range map[string]float64{"round trips/s": res.RoundtripsPerSec, "raw/s": res.RawPerSec, "ratio": res.Ratio, "p50": res.P50ms, "p99": res.P99ms} {
		if !(v > 0) {
			t.Errorf("%s = %v in %+v", name, v, res)
		}
	}
	// Each envelope of the latency phase reaches every stage; its
	// handler is called before its receipt is sent, and the receipt
	// tracked ends its round trip.
	want := []string{"stored", "received", "sent", "delivered"}
	if len(res.Stages) != len(want) {
		t.Fatalf("stages %+v, want %v", res.Stages, want)
	}
	for i, st := range res.Stages {
		if st.Stage != want[i] || !(st.P50ms > 0) || st.P50ms > st.P99ms {
			t.Errorf("stage %d: %+v, want %s", i, st, want[i])
		}
	}
	if received, delivered := res.Stages[1], res.Stages[3]; received.P50ms > delivered.P50ms || received.P99ms > delivered.P99ms ||
		delivered.P50ms != res.P50ms || delivered.P99ms != res.P99ms {
		t.Errorf("received %+v, delivered %+v, round trip p50 %v p99 %v", received, delivered, res.P50ms, res.P99ms)
	}
}
