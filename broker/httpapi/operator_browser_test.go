package httpapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestOperatorPage signs in as an operator in headless Chromium and goes
// through the page: the directory tree opened lazily and searched without
// diacritics, a document system and its agencies, the quarantine with
// the message and a retry that lands on the audit trail, the federation
// links, the alerts, the statistics chart; then switches to English.
func TestOperatorPage(t *testing.T) {
	ctx := newBrowser(t)
	e := newOperatorEnv(t)
	shots := artifactDir(t)
	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		for i, a := range actions {
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			_, err := chromedp.Run(sctx, a)
			cancel()
			if err != nil {
				_ = chromedp.Do(ctx, screenshot(shots, "failed-"+strings.ReplaceAll(step, " ", "-")))
				if html, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('error').outerHTML + document.querySelector('main > section:not([hidden])').outerHTML`)); err == nil {
					t.Logf("page at failure:\n%.6000s", html)
				}
				t.Fatalf("%s, action %d: %v", step, i+1, err)
			}
		}
	}
	count := func(sel string) int {
		t.Helper()
		return value(t, ctx, "count "+sel, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
	}
	node := func(code string) string { return fmt.Sprintf(`#dir-tree li.node[data-code=%q]`, code) }

	run("sign in",
		chromedp.Navigate(e.ts.URL+"/operator"),
		chromedp.WaitVisible(css(`#signin-token`)),
		screenshot(shots, "01-signin"),
		chromedp.SendKeys(css(`#signin-token`), e.opToken),
		chromedp.Click(css(`#signin-form button[type="submit"]`)),
		shown(css(node(ngheAn))),
		chromedp.WaitVisible(css(`#who-name`)),
		screenshot(shots, "02-directory-top"),
	)
	if who := value(t, ctx, "operator name", chromedp.TextContent(css(`#who-name`))); who != "Nguyễn Văn An" {
		t.Fatalf("signed in as %q", who)
	}
	if n := count(`#dir-tree > li.node`); n != 63 || count(`#dir-tree > li.node li`) != 0 {
		t.Fatalf("top of the tree shows %d entries, want the 63 provinces and ministries, closed", n)
	}
	run("open the tree",
		chromedp.Click(css(node(ngheAn)+` > .row > .toggle`)),
		shown(css(node(ngheAnDept))),
		chromedp.Click(css(node(ngheAnDept)+` > .row > .toggle`)),
		shown(css(node("001.01.41.H41"))),
		chromedp.Click(css(node(ngheAnDept)+` > ul > li.more button`)),
		shown(css(node(fmt.Sprintf("%03d.01.41.H41", communesUnder)))),
		chromedp.Click(css(node(ngheAnDept)+` > .row > .name`)),
		shown(css(`#dir-detail dl`)),
		screenshot(shots, "03-directory-open"),
	)
	if n := count(node(ngheAnDept) + ` > ul > li.node`); n != communesUnder {
		t.Fatalf("department shows %d communes, want %d", n, communesUnder)
	}
	if d := value(t, ctx, "detail", chromedp.TextContent(css(`#dir-detail`))); !strings.Contains(d, ngheAnSystem) || !strings.Contains(d, "snv@nghean.gov.vn") {
		t.Fatalf("detail panel: %q", d)
	}
	run("search without diacritics",
		chromedp.SendKeys(css(`#dir-q`), "so y te nghe an"),
		chromedp.Click(css(`#dir-search button[type="submit"]`)),
		shown(css(`#dir-results li[data-code="000.03.41.H41"]`)),
		screenshot(shots, "04-directory-search"),
	)
	if n := count(`#dir-results li[data-code]`); n != 1 {
		t.Fatalf("search found %d", n)
	}

	run("systems",
		chromedp.Click(css(`#nav a[data-nav="systems"]`)),
		shown(css(`#systems tr[data-system="`+ngheAnSystem+`"]`)),
		chromedp.Click(css(`#systems tr[data-system="`+ngheAnSystem+`"]`)),
		shown(css(`#sys-agencies li[data-code="`+ngheAnDept+`"]`)),
		screenshot(shots, "05-systems"),
	)

	seq := fmt.Sprint(e.quarantine)
	run("quarantine",
		chromedp.Click(css(`#nav a[data-nav="quarantine"]`)),
		shown(css(`#q-list tr[data-seq="`+seq+`"]`)),
		chromedp.Click(css(`#q-list tr[data-seq="`+seq+`"] td.reason`)),
		shown(css(`#q-detail dl`)),
		screenshot(shots, "06-quarantine-message"),
	)
	if d := value(t, ctx, "quarantined message", chromedp.TextContent(css(`#q-detail`))); !strings.Contains(d, "Công văn bị cách ly") || !strings.Contains(d, "không lưu được tệp") {
		t.Fatalf("quarantine detail: %q", d)
	}
	run("retry",
		chromedp.Click(css(`#q-list button.retry[data-seq="`+seq+`"]`)),
		shown(css(`#audit li[data-target="`+seq+`"]`)),
		chromedp.WaitNotPresent(css(`#q-list tr[data-seq="`+seq+`"]`)),
		screenshot(shots, "07-quarantine-retried"),
	)
	if a := value(t, ctx, "audit line", chromedp.TextContent(css(`#audit li[data-target="`+seq+`"]`))); !strings.Contains(a, "Nguyễn Văn An") || !strings.Contains(a, "ok") {
		t.Fatalf("audit trail: %q", a)
	}

	run("federation",
		chromedp.Click(css(`#nav a[data-nav="federation"]`)),
		shown(css(`#links tr[data-peer="hanoi"][data-state="down"]`)),
		screenshot(shots, "08-federation"),
	)
	run("alerts",
		chromedp.Click(css(`#nav a[data-nav="alerts"]`)),
		shown(css(`#alerts-list li.alert[data-rule="disk_filling"][data-state="firing"]`)),
		screenshot(shots, "09-alerts"),
	)
	if c := value(t, ctx, "alert count", chromedp.TextContent(css(`#alert-count`))); c != "1" {
		t.Fatalf("alert count %q", c)
	}
	run("statistics",
		chromedp.Click(css(`#nav a[data-nav="stats"]`)),
		shown(css(`#stats-chart rect.bar[data-metric="sent"]`)),
		shown(css(`#stats-table tr.total`)),
		screenshot(shots, "10-statistics"),
	)
	sent := value(t, ctx, "bars", chromedp.Evaluate[int](`Array.from(document.querySelectorAll('#stats-chart rect[data-metric="sent"]')).reduce((n, r) => n + Number(r.dataset.value), 0)`))
	if sent != 2 {
		t.Fatalf("chart shows %d sent, want 2", sent)
	}
	run("by agency, per month",
		chromedp.SetValue(css(`#stats-by`), "agency"),
		chromedp.SetValue(css(`#stats-period`), "month"),
		chromedp.Click(css(`#stats-form button[type="submit"]`)),
		shown(css(`#stats-table tr[data-key="`+govOffice+`"]`)),
		screenshot(shots, "11-statistics-by-agency"),
	)

	run("english",
		chromedp.Click(css(`#lang`)),
		chromedp.Click(css(`#nav a[data-nav="directory"]`)),
		chromedp.Click(css(`#dir-clear`)),
		shown(css(node(ngheAn))),
		screenshot(shots, "12-english"),
	)
	if nav := value(t, ctx, "nav", chromedp.TextContent(css(`#nav a[data-nav="directory"]`))); nav != "Directory" {
		t.Fatalf("nav in English: %q", nav)
	}
	if lang := value(t, ctx, "lang", chromedp.Evaluate[string](`document.documentElement.lang`)); lang != "en" {
		t.Fatalf("html lang %q", lang)
	}

	// A phone: nothing sticks out sideways.
	const overflow = `(() => { const w = document.documentElement.clientWidth;
		return Array.from(document.querySelectorAll('body *')).filter((el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.right > w + 1; })
			.map((el) => el.tagName + '.' + el.className).slice(0, 5).join(', '); })()`
	run("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Click(css(`#nav a[data-nav="alerts"]`)), shown(css(`#alerts-list li.alert`)), screenshot(shots, "13-phone-alerts"))
	if wide := value(t, ctx, "width", chromedp.Evaluate[string](overflow)); wide != "" {
		t.Errorf("wider than a phone: %s", wide)
	}
}
