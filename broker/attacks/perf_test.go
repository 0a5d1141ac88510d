package attacks_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/storage"
)

// The tracker reads the envelope id a message is about without decoding
// it (envelope.RouteKey) to hand a copy and everything about it to one
// worker in record order. An attacker who could make that reading differ
// from what the signature covers would have its copy reusing another's id
// judged on another worker, possibly before the real one, and bound to
// itself. These copies are signed by the attacker's own key (they verify)
// and spell the victim's id so that a careless reader sees something else.

// perfResign replaces the payload of raw (signed by code) with payload and
// signs it again with code's key: a verifying envelope written as the
// attacker likes.
func (a *arena) perfResign(code string, payload []byte) []byte {
	a.t.Helper()
	id := a.bus.Identity(code)
	if _, err := envelope.DecodePayload(payload); err != nil {
		a.t.Fatalf("the attacker's payload does not decode strictly: %v", err)
	}
	raw, err := envelope.Sign(payload, id.Key, id.Chain)
	if err != nil {
		a.t.Fatal(err)
	}
	if _, err := envelope.Open(raw); err != nil {
		a.t.Fatal(err)
	}
	return raw
}

func TestPerfRouteSpellingsOfAReusedIDMakeNoState(t *testing.T) {
	a := newArena(t)
	tr := a.bus.Service.Tracker
	// The tracker stopped: the victim's copy and the attacker's are both
	// waiting for it, the race the routing decides.
	tr.Stop()
	secret := "Tài liệu mật " + envelope.NewID()
	res, err := a.client(victimSender).Send(ctxT(t), envelope.New(victimSender, []string{victimRecipient}, "Mật: chỉ gửi Sơn La"),
		broker.File{Name: "mat.txt", Reader: strings.NewReader(secret), Size: int64(len(secret))})
	if err != nil {
		t.Fatal(err)
	}
	id := res.ID
	sum := sha256.Sum256([]byte(secret))
	hexSum := hex.EncodeToString(sum[:])
	e := envelope.New(attacker2, []string{victimRecipient}, "Dùng lại id, viết khác")
	e.ID = id
	e.Attachments = []envelope.Attachment{{Name: "mat.txt", MediaType: "text/plain", Size: int64(len(secret)), SHA256: hexSum, Key: storage.Key(hexSum)}}
	plain, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	escID := ""
	for _, r := range id {
		escID += `\u00` + hex.EncodeToString([]byte{byte(r)})
	}
	spellings := map[string][]byte{
		"plain":         plain,
		"escaped key":   []byte(strings.Replace(string(plain), `"id":`, `"i\u0064":`, 1)),
		"escaped value": []byte(strings.Replace(string(plain), `"id":"`+id+`"`, `"id":"`+escID+`"`, 1)),
		"status null":   []byte(strings.Replace(string(plain), `{"id":`, `{"status":null,"id":`, 1)),
		"id last":       idLast(plain, id),
	}
	nc, _ := a.raw(attacker2)
	var last uint64
	for name, p := range spellings {
		raw := a.perfResign(attacker2, p)
		if key, err := envelope.RouteKey(raw); err != nil || key != id {
			t.Fatalf("%s: routed by %q (%v), the signed envelope says %s", name, key, err, id)
		}
		last = trackPublish(t, nc, record.DocSubject(victimRecipient, attacker2), raw)
	}
	if err := tr.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	a.trackWait(last)
	a.trackVictimIntact(id, secret)
}

// idLast moves the "id" member of an envelope's JSON to the end.
func idLast(plain []byte, id string) []byte {
	s := strings.Replace(string(plain), `"id":"`+id+`",`, ``, 1)
	return []byte(s[:len(s)-1] + `,"id":"` + id + `"}`)
}
