package httpapi_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/docaxis/docaxis/envelope/edxml"
	"github.com/docaxis/docaxis/envelope/edxml/edxmltest"
)

// TestEdXMLMemory: POST /v1/edxml and GET /v1/envelopes/{id}/edxml of a
// file with a 50 MB attachment stay well under 3x the file's size in
// memory. The heap measured is the whole process: client, HTTP API and the
// embedded NATS server with its object store. Before the parser read text
// in pieces, the POST took 386 MB for this 66 MB file.
func TestEdXMLMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("sends a file of 66 MB")
	}
	e := newEnv(t)
	const size = 50 << 20
	path, fileSize := edxmltest.WriteLarge(t, t.TempDir(), edxmltest.LargeOptions{From: govOffice, To: ngheAn, Size: size, Seed: 3})
	var id string
	post := edxmltest.Peak(func() {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		req, err := http.NewRequest("POST", e.ts.URL+"/v1/edxml", f)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = fileSize
		req.Header.Set("Authorization", "Bearer "+e.tok[govOffice])
		req.Header.Set("Content-Type", "application/xml")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out struct{ ID string }
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusCreated {
			t.Fatalf("POST: %d %v", res.StatusCode, err)
		}
		id = out.ID
	})
	exported := filepath.Join(t.TempDir(), "out.edxml")
	get := edxmltest.Peak(func() {
		req, err := http.NewRequest("GET", e.ts.URL+"/v1/envelopes/"+id+"/edxml", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+e.tok[ngheAn])
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		f, err := os.Create(exported)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := io.Copy(f, res.Body); err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("GET: %d %v", res.StatusCode, err)
		}
	})
	t.Logf("file of %d MB: heap peak POST %d MB, GET %d MB", fileSize>>20, post>>20, get>>20)
	if post > uint64(fileSize) {
		t.Errorf("POST took %d MB for a file of %d MB, want under its size", post>>20, fileSize>>20)
	}
	// The object store's reader is pushed up to 64 MB ahead by the server
	// (flow control), whatever the file's size: the bound is for this one.
	if get > 2*uint64(fileSize) {
		t.Errorf("GET took %d MB for a file of %d MB, want under twice its size", get>>20, fileSize>>20)
	}

	// What came out holds the attachment that went in.
	f, err := os.Open(exported)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	m, err := edxml.ParseReaderAt(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	atts := m.Document().Attachments
	if len(atts) != 1 || atts[0].AttachmentName != "big.bin" {
		t.Fatalf("exported attachments %+v", atts)
	}
	rc, err := atts[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(h.Sum(nil)), edxmltest.SHA256(size, 3); got != want {
		t.Fatalf("exported attachment SHA-256 %s, want %s", got, want)
	}
}
