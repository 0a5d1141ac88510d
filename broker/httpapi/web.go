package httpapi

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"

	"github.com/docaxis/docaxis/envelope"
)

// The clerks' page: one html/template shell and a little plain JavaScript
// that talks to the same /v1 API with the agency's token. No build chain.

//go:embed web
var webFiles embed.FS

//go:embed openapi.json
var openAPIDoc []byte

// stateLabels are the Vietnamese names clerks know the states by (edXML
// status names where there is one).
var stateLabels = map[envelope.State]string{
	envelope.StateSent:            "Đã gửi",
	envelope.StateDelivered:       "Đã đến",
	envelope.StateInvalid:         "Không hợp lệ",
	envelope.StateRejected:        "Từ chối tiếp nhận",
	envelope.StateAccepted:        "Đã tiếp nhận",
	envelope.StateAssigned:        "Đã phân công",
	envelope.StateProcessing:      "Đang xử lý",
	envelope.StateDone:            "Hoàn thành",
	envelope.StateRecallRequested: "Yêu cầu thu hồi",
	envelope.StateRecallAccepted:  "Đồng ý thu hồi",
	envelope.StateRecallRefused:   "Từ chối thu hồi",
}

// pageConfig is handed to the page's script as JSON.
type pageConfig struct {
	States map[envelope.State]stateInfo        `json:"states"`
	Next   map[envelope.State][]envelope.State `json:"next"`
}

type stateInfo struct {
	Label string `json:"label"`
	Code  string `json:"code,omitempty"`
}

func newPageConfig() pageConfig {
	pc := pageConfig{States: map[envelope.State]stateInfo{}, Next: map[envelope.State][]envelope.State{}}
	for st, label := range stateLabels {
		pc.States[st] = stateInfo{Label: label, Code: st.Code()}
	}
	// The buttons a recipient's clerk gets in each state: the business
	// states the state machine allows next.
	business := []envelope.State{envelope.StateAccepted, envelope.StateRejected, envelope.StateAssigned,
		envelope.StateProcessing, envelope.StateDone, envelope.StateRecallAccepted, envelope.StateRecallRefused}
	for from := range stateLabels {
		next := []envelope.State{}
		for _, to := range business {
			if from != to && envelope.CheckTransition(from, to) == nil {
				next = append(next, to)
			}
		}
		pc.Next[from] = next
	}
	return pc
}

type webUI struct {
	page   []byte // the rendered shell: it depends on nothing per request
	static http.Handler
	title  string
	op     operatorShell // the operator's page, rendered on first use
}

func newWebUI(title, version string) (*webUI, error) {
	sub, err := fs.Sub(webFiles, "web/static")
	if err != nil {
		return nil, err
	}
	versions := map[string]string{}
	for _, name := range []string{"app.js", "app.css"} {
		b, err := fs.ReadFile(sub, name)
		if err != nil {
			return nil, fmt.Errorf("web page: %w", err)
		}
		sum := sha256.Sum256(b)
		versions[name] = hex.EncodeToString(sum[:6])
	}
	tmpl, err := template.ParseFS(webFiles, "web/index.html")
	if err != nil {
		return nil, fmt.Errorf("web page template: %w", err)
	}
	var buf bytes.Buffer
	err = tmpl.Execute(&buf, map[string]any{
		"Title":   title,
		"Version": version,
		"JS":      "/static/app.js?v=" + versions["app.js"],
		"CSS":     "/static/app.css?v=" + versions["app.css"],
		"Config":  newPageConfig(),
	})
	if err != nil {
		return nil, fmt.Errorf("web page template: %w", err)
	}
	files := http.FileServerFS(sub)
	return &webUI{
		title: title,
		page:  buf.Bytes(),
		static: http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Names carry a content hash (?v=), so they may be cached long.
			w.Header().Set("Cache-Control", "public, max-age=86400")
			files.ServeHTTP(w, r)
		})),
	}, nil
}

func (u *webUI) index(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	// Scripts and styles only from this server: data from the bus is
	// shown with textContent, and the policy is the second line of defence.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	_, _ = w.Write(u.page)
}

func (s *Server) openAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Access-Control-Allow-Origin", "*") // public description, read by API tools
	_, _ = w.Write(openAPIDoc)
}
