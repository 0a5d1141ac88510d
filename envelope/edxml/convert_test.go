package edxml_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/envelope/edxml"
)

func TestBusinessKinds(t *testing.T) {
	tests := []struct {
		file    string
		opts    edxml.ImportOptions
		kind    envelope.Kind
		refers  string
		reason  string
		extra   map[string]string
		noExtra []string
	}{
		{
			file: "doc_new.edxml", kind: envelope.KindDocument, reason: "Văn bản mới",
			extra: map[string]string{
				edxml.KeyBussinessPaper:           "0",
				edxml.KeyBussinessStaff:           "Trần Thị Bích Ngọc",
				edxml.KeyBussinessStaffDepartment: "Phòng Hành chính - Tổ chức",
				edxml.KeyBussinessStaffMobile:     "0912345678",
				edxml.KeyBussinessStaffEmail:      "ngoc.ttb@chinhphu.vn",
			},
			noExtra: []string{edxml.KeyBussinessDocumentID, edxml.KeyBussinessReplacements},
		},
		{
			file: "doc_revoke.edxml", kind: envelope.KindRevoke,
			refers: "b5e2c7d1-3a4f-4e8b-9d6c-1f2a3b4c5d6e", reason: "Thu hồi do sai sót về thể thức văn bản",
			extra:   map[string]string{edxml.KeyBussinessPaper: "1"},
			noExtra: []string{edxml.KeyBussinessDocumentID},
		},
		{
			// Not a UUID and nothing resolves it: Refers stays empty, the
			// edXML reference is kept.
			file: "doc_update.edxml", kind: envelope.KindUpdate, reason: "Điều chỉnh hạn xử lý và bổ sung nơi nhận",
			extra: map[string]string{
				edxml.KeyBussinessDocumentID:       "000.00.00.G22,2024/03/15,1234/VPCP-KGVX",
				edxml.KeyBussinessDocumentInfo:     "1",
				edxml.KeyBussinessDocumentReceiver: "1",
				edxml.KeyBussinessReceivers:        `[{"receiver_type":"1","organ_id":"000.00.00.H41"},{"receiver_type":"0","organ_id":"000.00.00.H29"}]`,
			},
		},
		{
			file: "doc_update.edxml", kind: envelope.KindUpdate, reason: "Điều chỉnh hạn xử lý và bổ sung nơi nhận",
			opts: edxml.ImportOptions{ResolveRef: func(id string) (string, bool) {
				return "0190f0e8-0000-7000-8000-000000000001", id == "000.00.00.G22,2024/03/15,1234/VPCP-KGVX"
			}},
			refers: "0190f0e8-0000-7000-8000-000000000001",
			extra:  map[string]string{edxml.KeyBussinessDocumentID: "000.00.00.G22,2024/03/15,1234/VPCP-KGVX"},
		},
		{
			// No Bussiness/DocumentId: the first replaced document is the one
			// acted on.
			file: "doc_replace.edxml", kind: envelope.KindReplace,
			refers: "c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f", reason: "Thay thế văn bản ban hành sai nội dung",
			extra: map[string]string{
				edxml.KeyBussinessDocumentID:   "",
				edxml.KeyBussinessReplacements: `[{"document_id":"c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f","organ_ids":["000.00.00.H41","000.00.00.H29"]},{"document_id":"000.00.00.G22,2024/03/10,1200/VPCP-KGVX","organ_ids":["000.00.00.H41"]}]`,
			},
		},
		{
			// Update without Bussiness/DocumentId: the header's DocumentId.
			file: "messy_prefix.edxml", kind: envelope.KindUpdate,
			refers: "e8f7d6c5-b4a3-4921-8f7e-6d5c4b3a2918", reason: "Cập nhật số liệu",
		},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			m := parseFile(t, filepath.Join("testdata", tc.file))
			e, _, err := m.ToEnvelope(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if e.Kind != tc.kind || e.Refers != tc.refers || e.Reason != tc.reason {
				t.Errorf("kind, refers, reason = %s, %q, %q; want %s, %q, %q", e.Kind, e.Refers, e.Reason, tc.kind, tc.refers, tc.reason)
			}
			for k, want := range tc.extra {
				if got, ok := e.Extra[k]; !ok || got != want {
					t.Errorf("Extra[%s] = %q (present %v), want %q", k, got, ok, want)
				}
			}
			for _, k := range tc.noExtra {
				if v, ok := e.Extra[k]; ok {
					t.Errorf("Extra[%s] = %q, want absent", k, v)
				}
			}
			if tc.kind != envelope.KindDocument && tc.refers == "" && !hasWarning(m.Warnings, "Refers left empty") {
				t.Errorf("no warning about the unresolved reference: %q", m.Warnings)
			}
		})
	}
}

// TestDocumentMapping checks where every field of a document goes.
func TestDocumentMapping(t *testing.T) {
	m := parseFile(t, "testdata/doc_new.edxml")
	e, atts, err := m.ToEnvelope(edxml.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Warnings) != 0 {
		t.Errorf("clean file draws warnings: %q", m.Warnings)
	}
	want := &envelope.Document{
		CodeNumber: "1234", CodeNotation: "VPCP-KGVX",
		PromulgationPlace: "Hà Nội", PromulgationDate: "2024-03-15",
		Type: "18", TypeName: "Công văn",
		Signer:  &envelope.Signer{Competence: "KT. BỘ TRƯỞNG, CHỦ NHIỆM", Position: "Phó Chủ nhiệm", FullName: "Nguyễn Văn Ánh"},
		DueDate: "2024-04-30", SteeringType: "1", Priority: "1",
		InReplyTo:  "3f1c2a9e-5b7d-4c11-9a0e-2d4b6f8a1c3e",
		DocumentID: "000.00.00.G22,2024/03/15,1234/VPCP-KGVX",
	}
	diffJSON(t, "Document", js(t, want), js(t, e.Document))
	if e.From != "000.00.00.G22" || strings.Join(e.To, " ") != "000.00.00.H41 000.00.00.H29" {
		t.Errorf("From %s To %v", e.From, e.To)
	}
	if e.Subject != "V/v triển khai chuyển đổi số trong cơ quan hành chính nhà nước" {
		t.Errorf("Subject %q", e.Subject)
	}
	if want := "Thủ tướng Chính phủ yêu cầu các Bộ, ngành, địa phương khẩn trương triển khai các nhiệm vụ & giải pháp chuyển đổi số.\nBáo cáo kết quả trước ngày 30/4/2024."; e.Body != want {
		t.Errorf("Body %q, want %q (CRLF read as LF, entity decoded)", e.Body, want)
	}
	// 14:05:09 in Hanoi is 07:05:09 UTC.
	if want := time.Date(2024, 3, 15, 7, 5, 9, 0, time.UTC); !e.Created.Equal(want) || e.Created.Location() != time.UTC {
		t.Errorf("Created %v, want %v in UTC", e.Created, want)
	}
	wantExtra := map[string]string{
		edxml.KeyFromOrganName:             "Văn phòng Chính phủ",
		edxml.KeyFromOrganInCharge:         "Chính phủ",
		edxml.KeyFromOrganAdd:              "Số 1 Hoàng Hoa Thám, quận Ba Đình, Hà Nội",
		edxml.KeyFromEmail:                 "vpcp@chinhphu.vn",
		edxml.KeyFromTelephone:             "080 43100",
		edxml.KeyFromFax:                   "080 44130",
		edxml.KeyFromWebsite:               "https://vpcp.chinhphu.vn",
		edxml.KeyTo:                        `[{"organ_id":"000.00.00.H41","organ_name":"Ủy ban nhân dân tỉnh Nghệ An","organ_add":"Số 03 đường Trường Thi, thành phố Vinh, Nghệ An","email":"ubnd@nghean.gov.vn"},{"organ_id":"000.00.00.H29","organ_name":"Ủy ban nhân dân thành phố Hà Nội"}]`,
		edxml.KeyToPlaces:                  `["Các Bộ, cơ quan ngang Bộ","UBND các tỉnh, thành phố trực thuộc Trung ương"]`,
		edxml.KeyOtherSphereOfPromulgation: "Liên thông văn bản quốc gia",
		edxml.KeyOtherTyperNotation:        "NVA",
		edxml.KeyOtherPromulgationAmount:   "15",
		edxml.KeyOtherPageAmount:           "3",
		edxml.KeyOtherAppendixes:           `["Phụ lục I: Danh mục nhiệm vụ","Phụ lục II: Biểu mẫu báo cáo"]`,
		edxml.KeyResponseFor:               `[{"organ_id":"000.00.00.H41","code":"56/UBND-VX","promulgation_date":"2024-02-20","document_id":"3f1c2a9e-5b7d-4c11-9a0e-2d4b6f8a1c3e"},{"organ_id":"000.00.00.H29","code":"789/UBND-KGVX","promulgation_date":"2024-02-25","document_id":"000.00.00.H29,2024/02/25,789/UBND-KGVX"}]`,
		edxml.KeyTrace:                     `[{"organ_id":"000.00.00.G22","timestamp":"2024-03-15T07:05:09Z"},{"organ_id":"000.00.00.H41","timestamp":"2024-03-15T07:06:30Z"}]`,
		edxml.KeyBussinessPaper:            "0",
		edxml.KeyBussinessStaff:            "Trần Thị Bích Ngọc",
		edxml.KeyBussinessStaffDepartment:  "Phòng Hành chính - Tổ chức",
		edxml.KeyBussinessStaffMobile:      "0912345678",
		edxml.KeyBussinessStaffEmail:       "ngoc.ttb@chinhphu.vn",
		edxml.KeyAttachments:               `[{"name":"1234-VPCP-KGVX.pdf","content_id":"cid:7d9f3b2a-1c4e-4f6a-8b0d-2e5c7a9f1b3d"},{"name":"Phụ lục kèm theo.txt","content_id":"cid:0a8e6c4b-2d1f-4e3a-9c7b-5f1d3b7e9a2c"}]`,
	}
	diffJSON(t, "Extra", js(t, wantExtra), js(t, e.Extra))

	if len(atts) != 2 {
		t.Fatalf("%d attachments, want 2", len(atts))
	}
	pdf, txt := atts[0], atts[1]
	if pdf.Name != "1234-VPCP-KGVX.pdf" || pdf.MediaType != "application/pdf" || pdf.Description != "Văn bản chính (đã ký số)" || pdf.Size != 148 {
		t.Errorf("pdf attachment %+v", pdf)
	}
	if b := readAll(t, pdf.Open); len(b) != 148 || !bytes.HasPrefix(b, []byte("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")) {
		t.Errorf("pdf content %q", b)
	}
	wantTxt := "Phụ lục kèm theo Công văn số 1234/VPCP-KGVX.\nDanh mục nhiệm vụ chuyển đổi số năm 2024.\n"
	if b := readAll(t, txt.Open); string(b) != wantTxt || txt.Size != int64(len(wantTxt)) {
		t.Errorf("txt content %q (size %d), want %q", b, txt.Size, wantTxt)
	}
	// Open can be called again (a store may retry).
	if b := readAll(t, txt.Open); string(b) != wantTxt {
		t.Errorf("second Open gave %q", b)
	}
}

func TestStatusStates(t *testing.T) {
	const uuidOf = "9fbfbad2-f1f8-4256-a2eb-50fb1061cddb"
	const edxmlOf = "000.00.00.G22,2024/03/15,1234/VPCP-KGVX"
	tests := []struct {
		file     string
		sample   bool
		state    envelope.State
		of       string // "" when the DocumentId is not a UUID
		from, to string
		created  string
		note     string
		staff    string
	}{
		{file: "status_01_inbox.edxml", state: envelope.StateDelivered, of: uuidOf, from: "000.00.00.H41", to: "000.00.00.G22", created: "2024-03-15T17:30:00Z", note: "Đã đến: hệ thống đã nhận văn bản"},
		{file: "status_02_rejection.edxml", state: envelope.StateRejected, from: "000.00.00.H41", to: "000.00.00.G22", created: "2024-03-16T18:31:01Z", note: "Từ chối tiếp nhận: văn bản gửi nhầm đơn vị", staff: "Lê Thị Hoa"},
		{file: "status_03_acceptance.edxml", state: envelope.StateAccepted, of: uuidOf, from: "000.00.00.H41", to: "000.00.00.G22", created: "2024-03-17T19:32:02Z", note: "Đã tiếp nhận văn bản đến", staff: "Lê Thị Hoa"},
		{file: "status_04_assignment.edxml", state: envelope.StateAssigned, from: "000.00.00.H41", to: "000.00.00.G22", created: "2024-03-18T20:33:03Z", note: "Đã phân công Sở Thông tin và Truyền thông chủ trì xử lý", staff: "Phạm Văn Đức"},
		{file: "status_05_processing.edxml", state: envelope.StateProcessing, of: uuidOf, from: "000.00.00.H41", to: "000.00.00.G22", created: "2024-03-19T21:34:04Z", note: "Đang xử lý văn bản đến", staff: "Hoàng Minh Tuấn"},
		{file: "status_06_finish.edxml", state: envelope.StateDone, from: "000.00.00.H41", to: "000.00.00.G22", created: "2024-03-20T22:35:05Z", note: "Đã hoàn thành xử lý, đã có văn bản trả lời", staff: "Hoàng Minh Tuấn"},
		{file: "status_13_cancellation.edxml", state: envelope.StateRecallRequested, of: uuidOf, from: "000.00.00.G22", to: "000.00.00.H41", created: "2024-03-21T23:36:06Z", note: "Đề nghị lấy lại văn bản đã gửi do sai sót", staff: "Trần Thị Bích Ngọc"},
		{file: "status_15_change-acceptance.edxml", state: envelope.StateRecallAccepted, from: "000.00.00.H41", to: "000.00.00.G22", created: "2024-03-23T00:37:07Z", note: "Đồng ý cho lấy lại văn bản", staff: "Lê Thị Hoa"},
		{file: "status_16_change-rejection.edxml", state: envelope.StateRecallRefused, of: uuidOf, from: "000.00.00.H41", to: "000.00.00.G22", created: "2024-03-24T01:38:08Z", note: "Không đồng ý lấy lại: văn bản đã được phân công xử lý", staff: "Lê Thị Hoa"},
		{file: "status_processing_05.edxml", sample: true, state: envelope.StateProcessing, from: "000.00.00.H41", to: "000.00.00.G22", created: "2015-09-20T04:08:36Z", note: "Đang xử lý văn bản đến", staff: "Nguyen thi ngoc tram"},
		{file: "status_rejection_02.edxml", sample: true, state: envelope.StateRejected, from: "000.00.00.H41", to: "000.00.00.G22", created: "2015-09-20T04:08:36Z", note: "Văn thư - Phòng Văn thư - Lưu trữ: Từ chối không tiếp nhận văn bản điện tử", staff: "Nguyen thi ngoc tram"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", tc.file)
			if tc.sample {
				path = samplePath(t, tc.file)
			}
			m := parseFile(t, path)
			s := m.Status()
			if s == nil || m.Document() != nil || !m.IsStatus() {
				t.Fatal("not read as a status message")
			}
			if st, err := s.State(); err != nil || st != tc.state || s.MessageHeader.StatusCode != tc.state.Code() {
				t.Errorf("State() = %s, %v (code %s), want %s", st, err, s.MessageHeader.StatusCode, tc.state)
			}
			e, _, err := m.ToEnvelope(edxml.ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if e.Kind != envelope.KindStatus || e.Status.State != tc.state || e.Status.Of != tc.of || e.Status.Note != tc.note {
				t.Errorf("status %s %+v, want state %s of %q note %q", e.Kind, e.Status, tc.state, tc.of, tc.note)
			}
			if e.From != tc.from || len(e.To) != 1 || e.To[0] != tc.to {
				t.Errorf("From %s To %v, want %s -> %s", e.From, e.To, tc.from, tc.to)
			}
			if got := e.Created.Format(time.RFC3339); got != tc.created {
				t.Errorf("Created %s, want %s", got, tc.created)
			}
			if tc.staff == "" && e.Status.Staff != nil || tc.staff != "" && (e.Status.Staff == nil || e.Status.Staff.Name != tc.staff) {
				t.Errorf("Staff %+v, want name %q", e.Status.Staff, tc.staff)
			}
			if tc.of == "" {
				if got := e.Extra[edxml.KeyResponseForDocumentID]; got == "" || !strings.Contains(got, ",") {
					t.Errorf("edXML DocumentId not kept: %q", got)
				}
			} else if _, ok := e.Extra[edxml.KeyResponseForDocumentID]; ok {
				t.Errorf("UUID DocumentId duplicated in Extra")
			}
			if !tc.sample && tc.of == "" && e.Extra[edxml.KeyResponseForDocumentID] != edxmlOf {
				t.Errorf("Extra document id %q", e.Extra[edxml.KeyResponseForDocumentID])
			}
			if e.Extra[edxml.KeyResponseForCode] == "" || e.Extra[edxml.KeyResponseForPromulgationDate] == "" {
				t.Errorf("ResponseFor code/date not kept: %v", e.Extra)
			}
		})
	}
}

// TestStatusFromEnvelope writes every state that has an edXML code and
// reads it back; the others are refused.
func TestStatusFromEnvelope(t *testing.T) {
	states := []envelope.State{envelope.StateDelivered, envelope.StateRejected, envelope.StateAccepted,
		envelope.StateAssigned, envelope.StateProcessing, envelope.StateDone, envelope.StateRecallRequested,
		envelope.StateRecallAccepted, envelope.StateRecallRefused}
	codes := []string{"01", "02", "03", "04", "05", "06", "13", "15", "16"}
	of := envelope.NewID()
	for i, st := range states {
		e := envelope.NewStatus("000.00.00.H41", "000.00.00.G22", of, st)
		e.Created = time.Date(2024, 3, 16, 1, 0, 0, 0, time.UTC)
		e.Status.Note = "Ghi chú trạng thái " + codes[i]
		e.Status.Staff = &envelope.Staff{Department: "Văn thư", Name: "Lê Thị Hoa", Email: "hoa@nghean.gov.vn", Phone: "0987000001"}
		s, err := edxml.StatusFromEnvelope(e)
		if err != nil {
			t.Fatalf("%s: %v", st, err)
		}
		if s.MessageHeader.StatusCode != codes[i] {
			t.Errorf("%s: code %s, want %s", st, s.MessageHeader.StatusCode, codes[i])
		}
		var buf bytes.Buffer
		if err := edxml.Write(&buf, e, nil); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), "<edXML:Timestamp>2024/03/16 08:00:00</edXML:Timestamp>") {
			t.Errorf("%s: timestamp not written in Vietnam time:\n%s", st, buf.String())
		}
		m, err := edxml.Parse(&buf)
		if err != nil {
			t.Fatal(err)
		}
		back, _, err := m.ToEnvelope(edxml.ImportOptions{ID: e.ID})
		if err != nil {
			t.Fatal(err)
		}
		if back.Status.State != st || back.Status.Of != of || back.Status.Note != e.Status.Note ||
			*back.Status.Staff != *e.Status.Staff || !back.Created.Equal(e.Created) || back.To[0] != "000.00.00.G22" {
			t.Errorf("%s came back as %+v (staff %+v, created %v)", st, back.Status, back.Status.Staff, back.Created)
		}
	}
	for _, st := range []envelope.State{envelope.StateSent, envelope.StateInvalid} {
		_, err := edxml.StatusFromEnvelope(envelope.NewStatus("000.00.00.H41", "000.00.00.G22", of, st))
		if !errors.Is(err, edxml.ErrUnknownStatus) || !errors.Is(err, envelope.ErrUnknownState) {
			t.Errorf("%s: err %v, want ErrUnknownStatus", st, err)
		}
	}
	if _, err := edxml.StatusFromEnvelope(envelope.New("000.00.00.H41", []string{"000.00.00.G22"}, "x")); !errors.Is(err, edxml.ErrKind) {
		t.Errorf("document envelope: err %v, want ErrKind", err)
	}
	if _, err := edxml.DocumentFromEnvelope(envelope.NewStatus("000.00.00.H41", "000.00.00.G22", of, envelope.StateDone), nil); !errors.Is(err, edxml.ErrKind) {
		t.Errorf("status envelope as document: err %v, want ErrKind", err)
	}
}

// TestImport stores attachments and the original file through the put
// callback; the envelope then validates.
func TestImport(t *testing.T) {
	path := "testdata/doc_new.edxml"
	m := parseFile(t, path)
	store := newMemStore()
	e, err := edxml.Import(m, edxml.ImportOptions{KeepOriginal: true}, store.put)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Validate(); err != nil {
		t.Fatalf("imported envelope does not validate: %v", err)
	}
	if len(e.Attachments) != 3 {
		t.Fatalf("%d attachments, want 2 + original", len(e.Attachments))
	}
	orig := e.Attachments[2]
	if orig.Name != edxml.OriginalName || orig.MediaType != edxml.OriginalMediaType {
		t.Errorf("original stored as %q %q", orig.Name, orig.MediaType)
	}
	raw := readFile(t, path)
	if !bytes.Equal(store.objects[orig.Key], raw) {
		t.Error("original not stored byte for byte")
	}
	if e.Attachments[0].Description != "Văn bản chính (đã ký số)" || e.Attachments[0].Size != 148 {
		t.Errorf("attachment entry %+v", e.Attachments[0])
	}

	// Export leaves the original out.
	var buf bytes.Buffer
	if err := edxml.Write(&buf, e, store.open); err != nil {
		t.Fatal(err)
	}
	back, err := edxml.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(back.Document().Attachments); n != 2 {
		t.Errorf("exported %d attachments, want 2", n)
	}
	if strings.Contains(buf.String(), "Signature") {
		t.Error("export wrote the old signature")
	}

	// A file with undecodable content cannot be imported: the error says
	// which attachment, where.
	bad := parseFile(t, "testdata/bad_base64.edxml")
	_, err = edxml.Import(bad, edxml.ImportOptions{}, newMemStore().put)
	var pe *edxml.ParseError
	if !errors.Is(err, edxml.ErrBadBase64) || !errors.As(err, &pe) || pe.Line != 121 ||
		pe.Path != "edXML/AttachmentEncoded/Attachment[2]/ContentTransferEncoded" || !strings.Contains(err.Error(), `"hong.pdf"`) {
		t.Errorf("Import(bad_base64) = %v", err)
	}
}

func TestImportOptions(t *testing.T) {
	m := parseFile(t, samplePath(t, "edoc.edxml"))
	e, _, err := m.ToEnvelope(edxml.ImportOptions{UseDocumentID: true})
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != "9fbfbad2-f1f8-4256-a2eb-50fb1061cddb" {
		t.Errorf("UseDocumentID: id %s", e.ID)
	}
	e, _, _ = m.ToEnvelope(edxml.ImportOptions{ID: "0190f0e8-0000-7000-8000-000000000009", UseDocumentID: true})
	if e.ID != "0190f0e8-0000-7000-8000-000000000009" {
		t.Errorf("explicit ID not used: %s", e.ID)
	}
	// Warn receives conversion warnings instead of Message.Warnings.
	st := parseFile(t, "testdata/status_02_rejection.edxml")
	var got []string
	before := len(st.Warnings)
	if _, _, err := st.ToEnvelope(edxml.ImportOptions{Warn: func(s string) { got = append(got, s) }}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(st.Warnings) != before {
		t.Errorf("Warn got %q, Message.Warnings %q", got, st.Warnings)
	}
	// A status without a timestamp gets Now.
	s := *st.Status()
	s.MessageHeader.Timestamp = time.Time{}
	e, err = edxml.StatusToEnvelope(&s, edxml.ImportOptions{Now: fixedNow})
	if err != nil || !e.Created.Equal(fixedNow()) {
		t.Errorf("Created %v, %v", e.Created, err)
	}
}

// TestWriteNativeEnvelope exports an envelope that never was edXML: Write
// makes up what edXML needs (trace header, content ids) deterministically.
func TestWriteNativeEnvelope(t *testing.T) {
	store := newMemStore()
	e := envelope.New("000.00.00.G22", []string{"000.00.00.H41", "000.00.00.H29"}, "Thông báo lịch họp <quý II> & kế hoạch")
	e.Created = time.Date(2024, 4, 1, 17, 30, 0, 0, time.UTC)
	e.Body = "Dòng 1\nDòng 2\twith tab\r\nCR kept"
	e.Document = &envelope.Document{CodeNumber: "99", CodeNotation: "TB-VPCP", PromulgationDate: "2024-04-01", DueDate: "2024-04-10", Priority: "2"}
	a, _ := store.put("lịch họp.pdf", "application/pdf", strings.NewReader("%PDF-1.7 lịch họp"))
	a.Description = "Lịch họp"
	e.Attachments = []envelope.Attachment{a}

	var first, second bytes.Buffer
	if err := edxml.Write(&first, e, store.open); err != nil {
		t.Fatal(err)
	}
	if err := edxml.Write(&second, e, store.open); err != nil {
		t.Fatal(err)
	}
	if first.String() != second.String() {
		t.Error("writing the same envelope twice gave different bytes")
	}
	m, err := edxml.Parse(&first)
	if err != nil {
		t.Fatalf("%v\n%s", err, second.String())
	}
	d := m.Document()
	h := d.MessageHeader
	if h.Subject != e.Subject || h.Content != e.Body || h.DocumentID != e.ID || h.From.OrganID != e.From || len(h.To) != 2 {
		t.Errorf("header %+v", h)
	}
	if h.PromulgationInfo.PromulgationDate != (edxml.Date{Year: 2024, Month: 4, Day: 1}) || h.DueDate.String() != "2024/04/10" || h.OtherInfo.Priority != "2" {
		t.Errorf("dates/priority %+v %+v %+v", h.PromulgationInfo, h.DueDate, h.OtherInfo)
	}
	tr := d.TraceHeaderList.TraceHeader
	if len(tr) != 1 || tr[0].OrganID != e.From || tr[0].Timestamp.Format("2006-01-02 15:04:05 -07:00") != "2024-04-02 00:30:00 +07:00" {
		t.Errorf("trace %+v", tr)
	}
	if len(d.Attachments) != 1 || d.Attachments[0].AttachmentName != "lịch họp.pdf" || !strings.HasPrefix(d.Attachments[0].ContentID, "cid:") ||
		string(readAll(t, d.Attachments[0].Open)) != "%PDF-1.7 lịch họp" || d.Manifest[0].Description != "Lịch họp" {
		t.Errorf("attachments %+v manifest %+v", d.Attachments, d.Manifest)
	}
	back, atts, err := m.ToEnvelope(edxml.ImportOptions{ID: e.ID})
	if err != nil {
		t.Fatal(err)
	}
	storeDecodable(t, back, atts, store)
	if back.Subject != e.Subject || back.Body != e.Body || !back.Created.Equal(e.Created) || back.Attachments[0].SHA256 != a.SHA256 {
		t.Errorf("came back as %+v", back)
	}

	// Revoke and replace without edXML history.
	r := envelope.New("000.00.00.G22", []string{"000.00.00.H41"}, "Thu hồi")
	r.Kind, r.Refers, r.Reason = envelope.KindReplace, envelope.NewID(), "Sai nội dung"
	d2, err := edxml.DocumentFromEnvelope(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := d2.TraceHeaderList.Bussiness
	if b.BussinessDocType != edxml.DocReplace || b.DocumentID != r.Refers || b.BussinessDocReason != "Sai nội dung" ||
		len(b.ReplacementInfoList) != 1 || b.ReplacementInfoList[0].DocumentID != r.Refers {
		t.Errorf("Bussiness %+v", b)
	}

	// Hand-edited Extra that cannot be read back is refused, naming the key.
	e.Extra = map[string]string{edxml.KeyTo: "[not json"}
	if err := edxml.Write(&bytes.Buffer{}, e, store.open); !errors.Is(err, edxml.ErrExtra) || !strings.Contains(err.Error(), edxml.KeyTo) {
		t.Errorf("bad Extra: %v", err)
	}
	e.Extra = nil
	e.Document.PromulgationDate = "15/03/2024"
	if err := edxml.Write(&bytes.Buffer{}, e, store.open); !errors.Is(err, edxml.ErrBadDate) || !strings.Contains(err.Error(), "promulgation_date") {
		t.Errorf("bad document date: %v", err)
	}
}

// TestAttachmentNames: whatever a file calls an attachment, the envelope
// gets a name envelope.CheckAttachmentName accepts.
// TestAttachmentNamesCaseFold: two attachments whose names differ only in
// case are one file on Windows and macOS; the second is renamed.
func TestAttachmentNamesCaseFold(t *testing.T) {
	att := func(name string) string {
		return "<Attachment><AttachmentName>" + name + "</AttachmentName><ContentTransferEncoded>TQ==</ContentTransferEncoded></Attachment>"
	}
	doc := "<edXMLEnvelope><edXMLHeader><MessageHeader><From><OrganId>000.00.00.G22</OrganId></From>" +
		"<Subject>x</Subject></MessageHeader></edXMLHeader><AttachmentEncoded>" + att("Báo cáo.pdf") + att("BÁO CÁO.PDF") + att("báo cáo.pdf") +
		"</AttachmentEncoded></edXMLEnvelope>"
	m, err := edxml.Parse(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	_, atts, err := m.ToEnvelope(edxml.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range atts {
		got = append(got, a.Name)
	}
	if want := []string{"Báo cáo.pdf", "BÁO CÁO (2).PDF", "báo cáo (3).pdf"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("names %q, want %q", got, want)
	}
}

func TestAttachmentNames(t *testing.T) {
	names := []struct{ in, want string }{
		{"báo cáo.pdf", "báo cáo.pdf"},
		{`C:\Văn thư\2024\báo cáo.pdf`, "báo cáo.pdf"},
		{"../../etc/passwd", "passwd"},
		{"a\u0085b\u009f.txt", "ab.txt"}, // C1 controls, allowed in XML text
		{"  ", "cid-1"},
		{"..", "cid-1"},
		{strings.Repeat("dài", 200) + ".pdf", ""},
		{"hoá đơn‮fdp.exe", "hoá đơnfdp.exe"}, // bidi override dropped: no disguised extension
		{"⁦a⁩‎.pdf‏", "a.pdf"},
		{"CON", "_CON"},
		{"nul.txt", "_nul.txt"},
		{"Com1 .pdf", "_Com1 .pdf"},
		{"báo cáo.pdf. . ", "báo cáo.pdf"},
		{"Quyết định: số 5?.pdf", "Quyết định_ số 5_.pdf"},
		{"original.edxml", "original (2).edxml"}, // the file as received keeps its name
	}
	for _, tc := range names {
		doc := "<edXMLEnvelope><edXMLHeader><MessageHeader><From><OrganId>000.00.00.G22</OrganId></From>" +
			"<Subject>x</Subject></MessageHeader></edXMLHeader><AttachmentEncoded><Attachment><ContentId>cid:cid-1</ContentId>" +
			"<AttachmentName>" + tc.in + "</AttachmentName><ContentTransferEncoded>TQ==</ContentTransferEncoded></Attachment></AttachmentEncoded></edXMLEnvelope>"
		m, err := edxml.Parse(strings.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		_, atts, err := m.ToEnvelope(edxml.ImportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got := atts[0].Name
		if err := envelope.CheckAttachmentName(got); err != nil {
			t.Errorf("%q -> %q: %v", tc.in, got, err)
		}
		if tc.want != "" && got != tc.want {
			t.Errorf("%q -> %q, want %q", tc.in, got, tc.want)
		}
		if tc.want == "" && (len(got) > envelope.MaxName || !strings.HasSuffix(got, ".pdf")) {
			t.Errorf("long name -> %q (%d bytes)", got, len(got))
		}
	}
}
