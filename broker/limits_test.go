package broker_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/envelope"
)

func TestLimits(t *testing.T) {
	bus := threeAgencies(t)
	ctx := ctxT(t)
	if err := bus.Service.Client.SetLimits(ctx, broker.Limits{MaxRecipients: 1, MaxAttachments: 1, MaxAttachmentSize: 10, MaxEnvelopeBytes: 64 << 10, PublishRate: 2}); err != nil {
		t.Fatal(err)
	}
	c := bus.Client(govOffice)
	file := func(name string, n int) broker.File {
		return broker.File{Name: name, Reader: strings.NewReader(strings.Repeat("x", n)), Size: int64(n)}
	}
	tests := []struct {
		name  string
		e     *envelope.Envelope
		files []broker.File
		want  string
	}{
		{"recipients", envelope.New(govOffice, []string{ngheAn, sonLa}, "hai nơi"), nil, "2 recipients, at most 1"},
		{"attachments", envelope.New(govOffice, []string{ngheAn}, "hai tệp"), []broker.File{file("a", 1), file("b", 1)}, "2 attachments, at most 1"},
		{"attachment size", envelope.New(govOffice, []string{ngheAn}, "tệp lớn"), []broker.File{file("a", 11)}, "11 bytes, at most 10"},
		{"envelope size", func() *envelope.Envelope {
			e := envelope.New(govOffice, []string{ngheAn}, "lớn")
			e.Body = strings.Repeat("n", 100<<10)
			return e
		}(), nil, "at most 65536"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Send(ctx, tt.e, tt.files...)
			if !errors.Is(err, broker.ErrLimit) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a limit error saying %q", err, tt.want)
			}
		})
	}
	// The rate: a burst of 2, then refused.
	var err error
	for i := 0; i < 5 && err == nil; i++ {
		_, err = c.Send(ctx, envelope.New(govOffice, []string{ngheAn}, "nhanh"))
	}
	if !errors.Is(err, broker.ErrRateLimited) {
		t.Fatalf("rate: %v", err)
	}
}
