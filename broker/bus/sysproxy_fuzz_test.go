package bus

import (
	"strings"
	"testing"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
)

// FuzzDecodeSysSubject: any subject either decodes to a valid system id
// and a known operation whose subject is exactly SystemServiceSubject of
// them (so a request cannot name one system and be answered as another),
// or is refused.
func FuzzDecodeSysSubject(f *testing.F) {
	for _, s := range []string{
		"axis.svc.sys.=dms-a.pub", "axis.svc.sys.=dms_a.marker", "axis.svc.sys.=dms-a.mark", "axis.svc.sys.=dms-a.q",
		"axis.svc.sys.=.pub", "axis.svc.sys.dms-a.pub", "axis.svc.sys.=dms-a.pub.x", "axis.svc.sys.=dms-a.*",
		"axis.svc.sys.==dms.pub", "axis.svc.sys.=a_b.pub", "axis.svc.sys.=a__b.pub", "axis.svc.sys.=000_00_00_G22.pub",
		"axis.svc.track.=dms-a.pub", "axis.svc.sys.=dms-a.", "axis.svc.sys..pub", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, subject string) {
		req, err := decodeSysSubject(subject)
		if err != nil {
			if req != (sysRequest{}) {
				t.Fatalf("%q refused but decoded %+v", subject, req)
			}
			return
		}
		if broker.CheckSystemID(req.system) != nil || strings.ContainsAny(req.system, "=_*> ") {
			t.Fatalf("%q decoded to system id %q", subject, req.system)
		}
		switch req.op {
		case record.SysOpPublish, record.SysOpMarkerGet, record.SysOpMarkerPut, record.SysOpForward:
		default:
			t.Fatalf("%q decoded to operation %q", subject, req.op)
		}
		if got := record.SystemServiceSubject(req.system, req.op); got != subject {
			t.Fatalf("%q decoded to %+v, whose subject is %q", subject, req, got)
		}
		if broker.SystemOfActor(envelope.CodeFromToken(envelope.Token(broker.SystemActor(req.system)))) != req.system {
			t.Fatalf("system %q does not survive its token", req.system)
		}
	})
}
