package broker_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/envelope"
)

// TestLongestNameSaves: a name as long as the sender may make it saves on
// receipt (the temporary file's name does not grow with it), and nothing
// temporary stays behind.
func TestLongestNameSaves(t *testing.T) {
	bus := bustest.Start(t)
	bus.AddAgency(govOffice, "Văn phòng Chính phủ")
	bus.AddAgency(ngheAn, "UBND tỉnh Nghệ An")
	sender := bus.Client(govOffice)
	names := []string{
		strings.Repeat("n", envelope.MaxName-4) + ".pdf",
		strings.Repeat("ễ", 82) + "abcde.txt", // multi-byte: 255 bytes, 91 characters
	}
	var files []broker.File
	for i, name := range names {
		if len(name) != envelope.MaxName {
			t.Fatalf("name %d is %d bytes", i, len(name))
		}
		files = append(files, broker.File{Name: name, Reader: strings.NewReader(name), Size: int64(len(name))})
	}
	res, err := sender.Send(ctxT(t), envelope.New(govOffice, []string{ngheAn}, "Tên tệp dài nhất"), files...)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	outs := receiveAll(t, bus.Client(ngheAn), ngheAn, broker.SaveAttachments(dir))
	if len(outs) != 1 || !outs[0].Verified || outs[0].Quarantined {
		t.Fatalf("outcomes %+v", outs)
	}
	for _, name := range names {
		got, err := os.ReadFile(filepath.Join(dir, res.ID, name))
		if err != nil || !bytes.Equal(got, []byte(name)) {
			t.Fatalf("saved %q: %q, %v", name, got, err)
		}
	}
	left, _ := os.ReadDir(filepath.Join(dir, res.ID))
	if len(left) != len(names) {
		var n []string
		for _, e := range left {
			n = append(n, e.Name())
		}
		t.Fatalf("folder holds %q, want only the attachments", n)
	}
	waitState(t, sender, res.ID, ngheAn, envelope.StateDelivered)
}

// TestSendRefusesAttachmentNames: names a recipient could not save as
// given, or that would show something else than they are, are refused at
// send with an error naming the attachment.
func TestSendRefusesAttachmentNames(t *testing.T) {
	bus := bustest.Start(t)
	bus.AddAgency(govOffice, "Văn phòng Chính phủ")
	bus.AddAgency(ngheAn, "UBND tỉnh Nghệ An")
	sender := bus.Client(govOffice)
	for _, name := range []string{"CON", "nul.txt", "hợp đồng\u202Efdp.exe", "../x", "a.pdf.", "b.pdf ", "c:d.pdf", strings.Repeat("n", envelope.MaxName+1)} {
		e := envelope.New(govOffice, []string{ngheAn}, "Tên tệp sai")
		_, err := sender.Send(ctxT(t), e, broker.File{Name: name, Reader: strings.NewReader("x"), Size: 1})
		if !errors.Is(err, broker.ErrAttachment) || !strings.Contains(err.Error(), "attachment name") {
			t.Errorf("send %q: %v", name, err)
		}
	}
	// Names equal but for case would be one file on Windows and macOS.
	e := envelope.New(govOffice, []string{ngheAn}, "Hai tệp cùng tên")
	_, err := sender.Send(ctxT(t), e, broker.File{Name: "Báo cáo.pdf", Reader: strings.NewReader("1"), Size: 1}, broker.File{Name: "BÁO CÁO.PDF", Reader: strings.NewReader("2"), Size: 1})
	if !errors.Is(err, envelope.ErrInvalid) || !strings.Contains(err.Error(), "attachments[1].name") {
		t.Errorf("send case variants: %v", err)
	}
}
