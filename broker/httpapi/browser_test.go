package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/docaxis/docaxis/broker/bustest"
)

// chromiumPath finds the browser for the page tests: $DOCAXIS_CHROMIUM,
// then Debian's chromium. Missing, the tests skip, except on CI.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("DOCAXIS_CHROMIUM"), "/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found (apt-get install chromium, or set DOCAXIS_CHROMIUM)")
	}
	t.Skip("chromium not found: page tests skipped (they fail on CI)")
	return ""
}

// artifactDir is where screenshots go: $DOCAXIS_ARTIFACTS/<test>, or the
// test's artifact directory (under -outputdir with -artifacts, else a
// temporary one).
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := t.ArtifactDir()
	if base := os.Getenv("DOCAXIS_ARTIFACTS"); base != "" {
		dir = filepath.Join(base, strings.ReplaceAll(t.Name(), "/", "_"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// newBrowser starts headless Chromium with flags that work in a
// container; the context ends at cleanup.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "vi-VN"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	ctx, cancelTimeout := context.WithTimeout(ctx, 120*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	// The page's console and uncaught errors go to the test log.
	go func() {
		for msg, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			t.Logf("browser console %s: %s", msg.Type, msg.Text)
		}
	}()
	return ctx
}

func screenshot(dir, name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		png, err := chromedp.FullScreenshot(100)(ctx, t) // 100: PNG
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
	})
}

// badge selects the live badge of (envelope, recipient) in a state.
func badge(id, recipient, state string) chromedp.CSS {
	return chromedp.CSS(fmt.Sprintf(`.badge[data-envelope=%q][data-recipient=%q][data-state=%q]`, id, recipient, state))
}

type css = chromedp.CSS

// shown waits until an element matching sel is rendered. Unlike
// WaitVisible, which looks at the first match only, any match counts: the
// same badge is in the hidden list view and in the open document.
func shown(sel chromedp.CSS) chromedp.Action[chromedp.Void] {
	poll := chromedp.Poll[bool](fmt.Sprintf(`Array.from(document.querySelectorAll(%q)).some((el) => el.getClientRects().length > 0)`, string(sel)),
		chromedp.WithPollingInterval(50*time.Millisecond))
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := poll(ctx, t)
		return err
	})
}

// value runs an action that returns a value, failing the test on error.
func value[T any](t *testing.T, ctx context.Context, step string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	return v
}

// TestPageSendAndWatchLive signs in as the Government Office, sends a
// document with a file from the page, and watches its badge go from sent
// to delivered to accepted, without reloading, while the recipient acts
// through the API; then signs in as the recipient, who sees the
// verification, downloads the file and moves the document on by keyboard.
func TestPageSendAndWatchLive(t *testing.T) {
	ctx := newBrowser(t)
	e := newEnv(t)
	shots := artifactDir(t)
	downloads := t.TempDir()
	content := "Kế hoạch triển khai trục liên thông văn bản năm 2025\n"
	upload := filepath.Join(t.TempDir(), "Kế hoạch triển khai.txt")
	if err := os.WriteFile(upload, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	// One overdue document already on record.
	late := e.post(govOffice, meta(`{"to":["000.00.00.H41","000.00.00.H14"],"subject":"Báo cáo tổng kết công tác văn thư, lưu trữ",
		"document":{"code_number":"12","code_notation":"BC-VPCP","due_date":"2020-01-15"}}`))
	if late.StatusCode != http.StatusCreated {
		t.Fatalf("send overdue document: %d %s", late.StatusCode, late.body)
	}

	var id string
	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		for i, a := range actions {
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			_, err := chromedp.Run(sctx, a)
			cancel()
			if err != nil {
				_ = chromedp.Do(ctx, screenshot(shots, "failed-"+strings.ReplaceAll(step, " ", "-")))
				if html, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('live').outerHTML + '\n' + document.getElementById('main').outerHTML`)); err == nil {
					t.Logf("page at failure:\n%s", html)
				}
				if id != "" {
					st, err := e.client.Status(ctxT(t), id)
					t.Logf("status on the bus at failure: %+v %v", st, err)
				}
				t.Fatalf("%s, action %d: %v", step, i+1, err)
			}
		}
	}
	run("sign in",
		chromedp.Navigate(e.ts.URL),
		chromedp.WaitVisible(css(`#signin-token`)),
		screenshot(shots, "01-signin"),
		chromedp.SendKeys(css(`#signin-token`), e.tok[govOffice]),
		chromedp.Click(css(`#signin-form button[type="submit"]`)),
		shown(css(`#view-list .doc.overdue`)),
		chromedp.WaitVisible(css(`#live[data-live="on"]`)),
		screenshot(shots, "02-outgoing-overdue"),
	)
	// Set once; still there at the end proves the page never reloaded.
	marker := value(t, ctx, "mark the page", chromedp.Evaluate[string](`window.__docaxisPage = String(Math.random())`))

	run("send from the page",
		chromedp.Click(css(`#nav a[data-nav="send"]`)),
		chromedp.WaitVisible(css(`#send-to input[value="`+ngheAn+`"]`)),
		chromedp.Click(css(`#send-to input[value="`+ngheAn+`"]`)),
		chromedp.SendKeys(css(`#send-subject`), "Về việc triển khai trục liên thông văn bản điện tử"),
		chromedp.SendKeys(css(`#send-number`), "45"),
		chromedp.SendKeys(css(`#send-notation`), "VPCP-KSTT"),
		chromedp.SetValue(css(`#send-due`), "2099-12-31"),
		chromedp.SendKeys(css(`#send-body`), "Đề nghị UBND tỉnh Nghệ An phối hợp thực hiện."),
		chromedp.SetUploadFiles(css(`#send-files`), []string{upload}),
		screenshot(shots, "03-send-form"),
		chromedp.Click(css(`#send-submit`)),
		shown(css(`#timelines .badge[data-state="sent"]`)),
		screenshot(shots, "04-document-sent"),
	)
	id = value(t, ctx, "envelope id", chromedp.Evaluate[string](`location.hash.split('/')[2]`))
	if progress := value(t, ctx, "upload progress", chromedp.TextContent(css(`#send-pct`), chromedp.NodeReady)); !strings.Contains(progress, "Đã gửi") {
		t.Errorf("progress text after upload = %q", progress)
	}
	run("outgoing list", chromedp.Click(css(`#nav a[data-nav="out"]`)), shown(badge(id, ngheAn, "sent")))

	// The recipient acts through the API; the badge follows live.
	var inbox struct{ Envelopes []envelopeJSON }
	e.do("GET", "/v1/inbox", ngheAn, nil).json(t, &inbox)
	if len(inbox.Envelopes) != 2 || inbox.Envelopes[1].ID != id || len(inbox.Envelopes[1].Attachments) != 1 ||
		inbox.Envelopes[1].Attachments[0].Name != "Kế hoạch triển khai.txt" {
		t.Fatalf("recipient's inbox = %+v", inbox)
	}
	if r := e.do("POST", "/v1/inbox/"+id+"/ack", ngheAn, nil); r.StatusCode != http.StatusOK {
		t.Fatalf("ack: %d %s", r.StatusCode, r.body)
	}
	run("badge delivered", shown(badge(id, ngheAn, "delivered")), screenshot(shots, "05-outgoing-delivered"))
	if r := e.do("POST", "/v1/envelopes/"+id+"/status", ngheAn, strings.NewReader(`{"state":"accepted","note":"Đã tiếp nhận, giao Sở Thông tin và Truyền thông"}`), "Content-Type", "application/json"); r.StatusCode != http.StatusAccepted {
		t.Fatalf("accept: %d %s", r.StatusCode, r.body)
	}
	run("badge accepted", shown(badge(id, ngheAn, "accepted")), screenshot(shots, "06-outgoing-accepted"))
	if label := value(t, ctx, "badge label", chromedp.TextContent(badge(id, ngheAn, "accepted"))); label != "Đã tiếp nhận" {
		t.Fatalf("badge label = %q", label)
	}
	if still := value(t, ctx, "page marker", chromedp.Evaluate[string](`window.__docaxisPage`)); still != marker {
		t.Fatal("the page reloaded while the badge changed")
	}

	run("timeline",
		chromedp.Click(css(`.doc[data-id="`+id+`"] h2 a`)),
		shown(css(`#timelines li[data-state="accepted"]`)),
		screenshot(shots, "07-document-timeline"),
	)
	if n := value(t, ctx, "timeline events", chromedp.Evaluate[int](`document.querySelectorAll('#timelines li').length`)); n != 3 {
		t.Fatalf("timeline has %d events, want sent, delivered, accepted", n)
	}
	run("search without diacritics",
		chromedp.Click(css(`#nav a[data-nav="out"]`)),
		shown(css(`#view-list .doc.overdue`)),
		chromedp.SendKeys(css(`#search-q`), "trien khai"),
		chromedp.Click(css(`#search-form button[type="submit"]`)),
		chromedp.WaitNotPresent(css(`#list .doc.overdue`)),
	)
	if n := value(t, ctx, "search results", chromedp.Evaluate[int](`document.querySelectorAll('#list .doc').length`)); n != 1 {
		t.Fatalf("search found %d documents, want 1", n)
	}

	// A phone: nothing may stick out sideways.
	const overflow = `(() => { const w = document.documentElement.clientWidth;
		return Array.from(document.querySelectorAll('body *')).filter((el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.right > w + 1; })
			.map((el) => el.tagName + '.' + el.className + ' ' + Math.round(el.getBoundingClientRect().right)).slice(0, 5).join(', '); })()`
	run("phone width",
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Click(css(`#search-reset`)),
		shown(css(`#view-list .doc.overdue`)),
		screenshot(shots, "08-phone-outgoing"),
	)
	if wide := value(t, ctx, "list width", chromedp.Evaluate[string](overflow)); wide != "" {
		t.Errorf("list: wider than a phone screen: %s", wide)
	}
	run("phone document",
		chromedp.Navigate(e.ts.URL+"/#/doc/"+id),
		shown(css(`#timelines li[data-state="accepted"]`)),
		screenshot(shots, "09-phone-document"),
	)
	if wide := value(t, ctx, "document width", chromedp.Evaluate[string](overflow)); wide != "" {
		t.Errorf("document: wider than a phone screen: %s", wide)
	}

	// The recipient's side: verification, download, a status by keyboard.
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads,
	}); err != nil {
		t.Fatalf("allow downloads: %v", err)
	}
	run("recipient signs in",
		chromedp.EmulateViewport(1280, 900),
		chromedp.Click(css(`#signout`)),
		chromedp.WaitVisible(css(`#signin-token`)),
		chromedp.SendKeys(css(`#signin-token`), e.tok[ngheAn]),
		chromedp.Click(css(`#signin-form button[type="submit"]`)),
		chromedp.WaitVisible(css(`#view-list`)),
		chromedp.Click(css(`#nav a[data-nav="in"]`)),
		shown(css(`.doc[data-id="`+id+`"] .verify.ok`)),
		shown(css(`.doc[data-id="`+id+`"] .files button`)),
		screenshot(shots, "10-incoming"),
		chromedp.Click(css(`.doc[data-id="`+id+`"] .files button`)),
	)
	saved := filepath.Join(downloads, "Kế hoạch triển khai.txt")
	bustest.Eventually(t, 10*time.Second, "download not saved as "+saved, func() error {
		if b, err := os.ReadFile(saved); err == nil && string(b) == content {
			return nil
		}
		entries, _ := os.ReadDir(downloads)
		return fmt.Errorf("folder holds %v", entries)
	})
	run("status by keyboard",
		chromedp.Click(css(`.doc[data-id="`+id+`"] h2 a`)),
		shown(css(`#timelines button[data-mark="processing"]`)),
		chromedp.SendKeys(css(`#timelines textarea`), "Đang xử lý tại phòng Hành chính"),
		chromedp.Focus(css(`#timelines button[data-mark="processing"]`)),
		chromedp.KeyEvent("\r"),
		shown(css(`#timelines li[data-state="processing"]`)),
		shown(badge(id, ngheAn, "processing")),
		screenshot(shots, "11-recipient-processing"),
	)
	st, err := e.client.Status(ctxT(t), id)
	if err != nil || st.Recipients[0].State != "processing" || st.Recipients[0].History[3].Note != "Đang xử lý tại phòng Hành chính" {
		t.Fatalf("status after the recipient's clerk acted = %+v, %v", st, err)
	}
}
