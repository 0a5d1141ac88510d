package broker_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/auth"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/filesvc"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/storage"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func securedBus(t *testing.T) *bustest.Bus {
	bus := bustest.Start(t, bustest.WithAuth())
	bus.AddAgency(govOffice, "Văn phòng Chính phủ")
	bus.AddAgency(ngheAn, "UBND tỉnh Nghệ An")
	bus.AddAgency(sonLa, "UBND tỉnh Sơn La")
	return bus
}

// The whole flow works within the agencies' own permissions.
func TestAgenciesWorkWithinTheirPermissions(t *testing.T) {
	bus := securedBus(t)
	ctx := ctxT(t)
	a, b := bus.Client(govOffice), bus.Client(ngheAn)
	if a.Agency() != govOffice || b.Agency() != ngheAn {
		t.Fatalf("clients connected as %q and %q", a.Agency(), b.Agency())
	}
	content := "Tệp đính kèm mật"
	res, err := a.Send(ctx, envelope.New(govOffice, []string{ngheAn, sonLa}, "Trong phạm vi quyền"),
		broker.File{Name: "mat.txt", Reader: strings.NewReader(content), Size: int64(len(content))})
	if err != nil {
		t.Fatal(err)
	}
	watch, cancel := context.WithCancel(ctx)
	defer cancel()
	updates, err := a.Watch(watch, govOffice)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if outs := receiveAll(t, b, ngheAn, broker.SaveAttachments(dir)); len(outs) != 1 || !outs[0].Verified {
		t.Fatalf("recipient: %+v", outs)
	}
	if got, err := os.ReadFile(filepath.Join(dir, res.ID, "mat.txt")); err != nil || string(got) != content {
		t.Fatalf("attachment through the attachment service: %q, %v", got, err)
	}
	waitState(t, a, res.ID, ngheAn, envelope.StateDelivered)
	if _, err := b.Mark(ctx, ngheAn, res.ID, envelope.StateAccepted, broker.MarkOptions{Note: "tiếp nhận"}); err != nil {
		t.Fatal(err)
	}
	waitState(t, a, res.ID, ngheAn, envelope.StateAccepted)
	for _, c := range []*broker.Client{a, b} {
		ds, err := c.Status(ctx, res.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := 2
		if c == b {
			want = 1 // a recipient sees its own copy only
		}
		if len(ds.Recipients) != want {
			t.Fatalf("%s sees %d recipients, want %d", c.Agency(), len(ds.Recipients), want)
		}
	}
	// The sender's watch saw the acceptance.
	for {
		select {
		case tr := <-updates:
			if tr.Recipient == ngheAn && tr.State == envelope.StateAccepted {
				return
			}
		case <-ctx.Done():
			t.Fatal("watch did not show the acceptance")
		}
	}
}

// attacker connects with B's credentials as any NATS client would, and
// records the permission violations the server reports.
type attacker struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	mu   sync.Mutex
	errs []string
}

func attackAs(t *testing.T, bus *bustest.Bus, code string) *attacker {
	t.Helper()
	at := &attacker{}
	nc, err := nats.Connect(bus.URL(), nats.UserCredentials(bus.AgencyCreds(code)), nats.CustomInboxPrefix(auth.InboxPrefix(code)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			at.mu.Lock()
			at.errs = append(at.errs, err.Error())
			at.mu.Unlock()
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	at.nc = nc
	at.js, _ = jetstream.New(nc, jetstream.WithDefaultTimeout(time.Second))
	return at
}

// violated reports whether the server refused something on subject.
func (at *attacker) violated(subject string) bool {
	_ = at.nc.FlushTimeout(time.Second)
	time.Sleep(50 * time.Millisecond) // the -ERR arrives after the flush's PONG at most shortly
	at.mu.Lock()
	defer at.mu.Unlock()
	for _, e := range at.errs {
		if strings.Contains(strings.ToLower(e), "permissions violation") && strings.Contains(e, subject) {
			return true
		}
	}
	return false
}

func TestAnotherAgencyGetsNothing(t *testing.T) {
	bus := securedBus(t)
	ctx := ctxT(t) // each attack below gets its own short deadline
	res, err := bus.Client(govOffice).Send(ctx, envelope.New(govOffice, []string{sonLa}, "Thư mật cho Sơn La"))
	if err != nil {
		t.Fatal(err)
	}
	c := envelope.Token(sonLa)
	a := envelope.Token(govOffice)
	tests := []struct {
		name    string
		attack  func(at *attacker) error
		subject string // where the server reports the violation
	}{
		{"subscribe to C's mailbox subject", func(at *attacker) error {
			_, err := at.nc.SubscribeSync("axis.doc." + c + ".*")
			return err
		}, "axis.doc." + c + ".*"},
		{"subscribe to all inboxes", func(at *attacker) error {
			_, err := at.nc.SubscribeSync("_INBOX.>")
			return err
		}, "_INBOX.>"},
		{"subscribe to C's inbox", func(at *attacker) error {
			_, err := at.nc.SubscribeSync(auth.InboxPrefix(sonLa) + ".>")
			return err
		}, auth.InboxPrefix(sonLa) + ".>"},
		{"bind C's mailbox consumer", func(at *attacker) error {
			_, err := at.js.Consumer(ctx, record.Stream, record.MailboxDurable(sonLa))
			return err
		}, "$JS.API.CONSUMER.INFO.AXIS." + record.MailboxDurable(sonLa)},
		{"create a consumer on C's mailbox", func(at *attacker) error {
			_, err := at.js.CreateConsumer(ctx, record.Stream, jetstream.ConsumerConfig{FilterSubject: record.MailboxFilter(sonLa)})
			return err
		}, "$JS.API.CONSUMER.CREATE.AXIS"},
		{"fetch from C's durable", func(at *attacker) error {
			_, err := at.nc.Request("$JS.API.CONSUMER.MSG.NEXT.AXIS."+record.MailboxDurable(sonLa), []byte(`{"batch":1}`), 500*time.Millisecond)
			return err
		}, "$JS.API.CONSUMER.MSG.NEXT.AXIS." + record.MailboxDurable(sonLa)},
		{"publish an envelope on C's sender subject", func(at *attacker) error {
			return at.nc.Publish(record.DocSubject(govOffice, sonLa), []byte("giả mạo"))
		}, record.DocSubject(govOffice, sonLa)},
		{"publish a status as C", func(at *attacker) error {
			return at.nc.Publish(record.StatusSubject(govOffice, sonLa), []byte("giả mạo"))
		}, record.StatusSubject(govOffice, sonLa)},
		{"delete the record stream", func(at *attacker) error {
			return at.js.DeleteStream(ctx, record.Stream)
		}, "$JS.API.STREAM.DELETE.AXIS"},
		{"purge the record stream", func(at *attacker) error {
			_, err := at.nc.Request("$JS.API.STREAM.PURGE.AXIS", nil, 500*time.Millisecond)
			return err
		}, "$JS.API.STREAM.PURGE.AXIS"},
		{"read another agency's tracking key", func(at *attacker) error {
			_, err := at.nc.Request("$JS.API.DIRECT.GET.KV_AXIS_TRACK.$KV.AXIS_TRACK."+a+"."+res.ID+"."+c, nil, 500*time.Millisecond)
			return err
		}, "$JS.API.DIRECT.GET.KV_AXIS_TRACK.$KV.AXIS_TRACK." + a},
		{"open the tracking bucket", func(at *attacker) error {
			_, err := at.js.KeyValue(ctx, record.TrackBucket)
			return err
		}, "$JS.API.STREAM.INFO.KV_AXIS_TRACK"},
		{"watch another agency's tracking", func(at *attacker) error {
			_, err := at.js.CreateConsumer(ctx, "KV_"+record.TrackBucket, jetstream.ConsumerConfig{FilterSubject: "$KV.AXIS_TRACK.*.*." + c})
			return err
		}, "$JS.API.CONSUMER.CREATE.KV_AXIS_TRACK"},
		{"write a tracking key", func(at *attacker) error {
			return at.nc.Publish("$KV.AXIS_TRACK."+a+"."+res.ID+"."+c, []byte(`{"state":"done"}`))
		}, "$KV.AXIS_TRACK." + a},
		{"write C's received marker", func(at *attacker) error {
			return at.nc.Publish("$KV.AXIS_RECEIVED."+c+"."+res.ID, []byte("x"))
		}, "$KV.AXIS_RECEIVED." + c},
		{"read the attachment store directly", func(at *attacker) error {
			_, err := at.js.ObjectStore(ctx, "AXIS_FILES")
			return err
		}, "$JS.API.STREAM.INFO.OBJ_AXIS_FILES"},
		{"change the directory", func(at *attacker) error {
			return at.nc.Publish("$KV.AXIS_DIRECTORY.agency."+c, []byte(`{}`))
		}, "$KV.AXIS_DIRECTORY.agency." + c},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := attackAs(t, bus, ngheAn)
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			err := tt.attack(at)
			if !at.violated(tt.subject) {
				t.Fatalf("no permission violation on %s (err %v, async %v)", tt.subject, err, at.errs)
			}
		})
	}
	// The attachment service refuses B an attachment of C's mail, exactly
	// as if it did not exist.
	secret := "Phụ lục chỉ Sơn La được đọc"
	ctx = ctxT(t)
	_, err = bus.Client(govOffice).Send(ctx, envelope.New(govOffice, []string{sonLa}, "Có phụ lục"),
		broker.File{Name: "pl.txt", Reader: strings.NewReader(secret), Size: int64(len(secret))})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(secret))
	b := bus.Client(ngheAn)
	for _, key := range []string{storage.Key(hex.EncodeToString(sum[:])), storage.Key(strings.Repeat("0", 64))} {
		if _, _, err := b.Store().Get(ctx, key); !errors.Is(err, filesvc.ErrForbidden) {
			t.Fatalf("B reading %s: %v", key, err)
		}
	}
	// Sơn La's mail is still there, untouched, for Sơn La.
	if outs := receiveAll(t, bus.Client(sonLa), sonLa); len(outs) != 2 || outs[0].ID != res.ID || !outs[0].Verified || !outs[1].Verified {
		t.Fatalf("Sơn La's mailbox after the attacks: %+v", outs)
	}
}

func TestAnonymousConnectionRefused(t *testing.T) {
	bus := securedBus(t)
	_, err := nats.Connect(bus.URL(), nats.MaxReconnects(0))
	if err == nil || !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("anonymous connect: %v", err)
	}
}
