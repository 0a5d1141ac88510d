package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"sync"
)

// operatorShell is the operator's page, rendered on first use: one
// html/template shell and plain JavaScript (web/static/operator.js) that
// talks to /v1/operator with the operator's token.
type operatorShell struct {
	once sync.Once
	page []byte
	err  error
}

func renderOperatorPage(title string) ([]byte, error) {
	sub, err := fs.Sub(webFiles, "web/static")
	if err != nil {
		return nil, err
	}
	v := map[string]string{}
	for _, name := range []string{"app.css", "operator.css", "operator.js"} {
		b, err := fs.ReadFile(sub, name)
		if err != nil {
			return nil, fmt.Errorf("operator page: %w", err)
		}
		sum := sha256.Sum256(b)
		v[name] = "/static/" + name + "?v=" + hex.EncodeToString(sum[:6])
	}
	tmpl, err := template.ParseFS(webFiles, "web/operator.html")
	if err != nil {
		return nil, fmt.Errorf("operator page template: %w", err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, map[string]any{"Title": title, "BaseCSS": v["app.css"], "CSS": v["operator.css"], "JS": v["operator.js"]}); err != nil {
		return nil, fmt.Errorf("operator page template: %w", err)
	}
	return buf.Bytes(), nil
}

func (u *webUI) operatorPage(w http.ResponseWriter, _ *http.Request) {
	u.op.once.Do(func() { u.op.page, u.op.err = renderOperatorPage(u.title) })
	if u.op.err != nil {
		http.Error(w, u.op.err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	_, _ = w.Write(u.op.page)
}
