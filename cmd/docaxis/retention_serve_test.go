package main

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/bustest"
)

// `serve --retention-every` applies the policy on its schedule, first one
// interval after the start, in the one process that holds the duty's
// lease: a second serve on the same bus stays quiet. (A handover is the
// lease's, tested with the alerts and the rate gate: here the second
// serve uses the first one's embedded server, which dies with it.)
func TestServeRetentionSchedule(t *testing.T) {
	if testing.Short() {
		t.Skip("runs serve")
	}
	s := &faultServe{t: t, bin: faultBinary(t), home: filepath.Join(t.TempDir(), "home"), listen: faultFreePort(t),
		extra: []string{"--retention-every", "300ms", "--log-level", "info"}}
	s.start()
	t.Cleanup(s.kill)
	if !strings.Contains(s.logText(), "retention runs on a schedule") {
		t.Fatalf("serve did not schedule retention:\n%s", s.logText())
	}
	bustest.Eventually(t, 30*time.Second, "retention not applied twice in 30 s", func() error {
		if text := s.logText(); strings.Count(text, `"msg":"retention applied"`) < 2 {
			return errors.New("\n" + text)
		}
		return nil
	})
	if strings.Contains(s.logText(), `"level":"ERROR"`) {
		t.Fatalf("serve logged an error:\n%s", s.logText())
	}

	second := &faultServe{t: t, bin: s.bin, home: s.home, nats: s.url(),
		extra: []string{"--retention-every", "300ms", "--log-level", "info", "--replicas", "1"}}
	second.start()
	t.Cleanup(second.kill)
	time.Sleep(time.Second)
	if n := strings.Count(second.logText(), `"msg":"retention applied"`); n > 0 {
		t.Fatalf("two processes apply retention (the second %d times):\n%s", n, second.logText())
	}
	// The first, meanwhile, goes on.
	before := strings.Count(s.logText(), `"msg":"retention applied"`)
	bustest.Eventually(t, 30*time.Second, "the first serve stopped applying retention", func() error {
		if text := s.logText(); strings.Count(text, `"msg":"retention applied"`) <= before {
			return errors.New("\n" + text)
		}
		return nil
	})
}
