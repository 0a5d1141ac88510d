package attacks_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/storage"
)

// H99, an agency of the national bus, lists in a signed envelope of its
// own the hash of G22's confidential attachment (G22 → H14, both on the
// national) and publishes it straight on the bus with its own credentials,
// addressed to H41, its accomplice on a member bus. Locally such an
// envelope grants nobody access to bytes its sender never held; across the
// federation the bytes must not leave either: the national's federation
// service refuses the copy instead of pushing G22's bytes to H41's bus,
// where H41 would read them.
func TestFederationForwardsNoAttachmentTheSenderNeverHeld(t *testing.T) {
	ctx := bustest.Context(t, 3*time.Minute)
	vn := bustest.StartNational(t, "VN")
	h41 := bustest.StartMember(t, "H41", vn)
	for _, code := range []string{victimSender, victimRecipient, attacker} {
		vn.AddAgency(code, cast[code])
	}
	h41.AddAgency(attacker2, cast[attacker2])
	cvn, c41 := vn.Client(), h41.Client()
	for _, c := range []*broker.Client{cvn, c41} {
		eventually(t, "directory: H41 on bus H41", func() error {
			ag, err := c.LookupAgency(ctx, attacker2)
			if err != nil {
				return err
			}
			if ag.Bus != "H41" {
				return errors.New("served by " + ag.Bus)
			}
			return nil
		})
	}

	secret := "Tài liệu mật " + envelope.NewID()
	res, err := vn.Client(victimSender).Send(ctx, envelope.New(victimSender, []string{victimRecipient}, "Mật: chỉ gửi Sơn La"),
		broker.File{Name: "mat.txt", Reader: strings.NewReader(secret), Size: int64(len(secret))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cvn.WaitState(ctx, res.ID, victimRecipient, envelope.StateSent); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(secret))
	hexSum := hex.EncodeToString(sum[:])

	e := envelope.New(attacker, []string{attacker2}, "Chuyển giúp tệp của người khác")
	e.Attachments = []envelope.Attachment{{Name: "x.txt", MediaType: "text/plain", Size: int64(len(secret)), SHA256: hexSum, Key: storage.Key(hexSum)}}
	raw, err := vn.Identity(attacker).Seal(e)
	if err != nil {
		t.Fatal(err)
	}
	_, js := vn.AgencyConnect(t, attacker)
	if _, err := js.Publish(ctx, record.DocSubject(attacker2, attacker), raw); err != nil {
		t.Fatal(err)
	}

	// Either H41 reads G22's bytes on its own bus, or the national refused
	// the copy (its federation quarantine names the envelope).
	accomplice := h41.Client(attacker2).Store()
	eventually(t, "H99's envelope refused by the national, or G22's bytes on H41", func() error {
		if r, _, err := accomplice.Get(ctx, storage.Key(hexSum)); err == nil {
			b, _ := io.ReadAll(r)
			r.Close()
			t.Fatalf("H41 read on its own bus G22's attachment, which H99 never held, forwarded by the national: %q", b)
		}
		list, err := cvn.QuarantineList(ctx, broker.FederationQuarantine)
		if err != nil {
			return err
		}
		for _, q := range list {
			if q.Envelope == e.ID {
				if !strings.Contains(q.Reason, hexSum) {
					t.Fatalf("quarantined for %q", q.Reason)
				}
				return nil
			}
		}
		return errors.New("not yet")
	})
	// And H41 never got the bytes.
	if _, err := c41.Store().Stat(context.WithoutCancel(ctx), storage.Key(hexSum)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("G22's attachment in H41's store: %v", err)
	}
}

// H99 opens a send on the HTTP API and keeps it open. G22 then sends H14
// and H99 a letter with an attachment. H99, now holding those bytes, puts
// them in its open request, which it then has refused (two files of one
// name). The request removes what it "created": the store reports G22's
// object, made after the request began, as if this request had made it,
// and H99's refused request deletes it. H14, which has not read it yet,
// must still read G22's attachment.
func TestHTTPRefusedSendKeepsAnotherSendersAttachment(t *testing.T) {
	a := newArena(t)
	ctx := ctxT(t)

	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	req, err := http.NewRequestWithContext(ctx, "POST", a.http.URL+"/v1/envelopes", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.tok[attacker])
	req.Header.Set("Content-Type", mw.FormDataContentType())
	type answer struct {
		status int
		body   string
		err    error
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- answer{status: resp.StatusCode, body: string(b)}
	}()
	part := func(name, filename string, data []byte) {
		h := textproto.MIMEHeader{}
		cd := `form-data; name="` + name + `"`
		if filename != "" {
			cd += `; filename="` + filename + `"`
		}
		h.Set("Content-Disposition", cd)
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	part("meta", "", []byte(`{"to":["`+attacker2+`"],"subject":"Giữ chỗ"}`))
	// A file of its own, then the next part's header: once the store holds
	// the first file, the request is under way.
	own := []byte("Tệp riêng " + envelope.NewID())
	ownSum := sha256.Sum256(own)
	part("file", "rieng.txt", own)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="x.txt"`)
	w, err := mw.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "H99's first file stored", func() error {
		_, err := a.admin.Store().Stat(ctx, storage.Key(hex.EncodeToString(ownSum[:])))
		return err
	})

	// G22's letter to H14 and H99.
	secret := "Tài liệu chung " + envelope.NewID()
	res, err := a.client(victimSender).Send(ctx, envelope.New(victimSender, []string{victimRecipient, attacker}, "Gửi Sơn La và H99"),
		broker.File{Name: "chung.txt", Reader: strings.NewReader(secret), Size: int64(len(secret))})
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{victimRecipient, attacker} {
		if _, err := a.admin.WaitState(ctx, res.ID, to, envelope.StateSent); err != nil {
			t.Fatal(err)
		}
	}
	sum := sha256.Sum256([]byte(secret))
	key := storage.Key(hex.EncodeToString(sum[:]))
	// H99 reads the bytes it was sent, as a recipient may.
	var got []byte
	eventually(t, "H99 reads G22's attachment", func() error {
		r, _, err := a.client(attacker).Store().Get(ctx, key)
		if err != nil {
			return err
		}
		defer r.Close()
		got, err = io.ReadAll(r)
		return err
	})
	if _, err := w.Write(got); err != nil {
		t.Fatal(err)
	}
	part("file", "x.txt", []byte("lần hai"))
	mw.Close()
	pw.Close()
	ans := <-done
	if ans.err != nil {
		t.Fatal(ans.err)
	}
	if ans.status != http.StatusBadRequest {
		t.Fatalf("H99's request: %d %s", ans.status, ans.body)
	}

	r, _, err := a.client(victimRecipient).Store().Get(ctx, key)
	if err != nil {
		t.Fatalf("H14 cannot read G22's attachment after H99's refused request: %v", err)
	}
	defer r.Close()
	if b, err := io.ReadAll(r); err != nil || string(b) != secret {
		t.Fatalf("H14 read %q, %v", b, err)
	}
}
