package envelope

import (
	"encoding/base64"
	"encoding/json"
	"testing"
)

// routeSeed is a document as the bus writes one, a seed of FuzzRouteKey.
func routeSeed() *Envelope {
	e := New("000.00.00.G22", []string{"000.00.00.H41"}, "Công văn \"mẫu\"")
	e.Document = &Document{CodeNumber: "12", CodeNotation: "VPCP-TTĐT"}
	return e
}

// FuzzRouteKey: for a payload that decodes strictly (as a verified one
// does), the route read without decoding is what the envelope says.
func FuzzRouteKey(f *testing.F) {
	st := NewStatus("000.00.00.H41", "000.00.00.G22", NewID(), StateDelivered)
	for _, v := range []any{routeSeed(), st} {
		b, _ := json.Marshal(v)
		f.Add(b)
	}
	f.Add([]byte(`{"id":"a","status":null}`))
	f.Add([]byte(`{"status":{"of":"x","staff":{"name":"id"}},"id":"a"}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		raw := []byte("aGRy." + base64.RawURLEncoding.EncodeToString(payload) + ".c2ln")
		key, ok := routeKey(raw)
		e, err := DecodePayload(payload)
		if err != nil || !ok {
			return
		}
		want := e.ID
		if e.Status != nil {
			want = e.Status.Of
		}
		if key != want {
			t.Fatalf("route %q, the envelope says %q (%s)", key, want, payload)
		}
	})
}
