package httpapi_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestPageListMore: the clerks' list shows a page and fetches the older
// documents on request, in order, until there are no more.
func TestPageListMore(t *testing.T) {
	ctx := newBrowser(t)
	e := newEnv(t)
	var ids []string
	for i := range 3 {
		ids = append(ids, e.sendDoc(govOffice, fmt.Sprintf("Công văn số %d", i), []string{ngheAn}))
	}
	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		for i, a := range actions {
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			_, err := chromedp.Run(sctx, a)
			cancel()
			if err != nil {
				t.Fatalf("%s, action %d: %v", step, i+1, err)
			}
		}
	}
	order := func() string {
		return value(t, ctx, "list order", chromedp.Evaluate[string](`Array.from(document.querySelectorAll('#list .doc')).map((d) => d.dataset.id).join(',')`))
	}
	run("sign in",
		chromedp.Navigate(e.ts.URL),
		chromedp.WaitVisible(css(`#signin-token`)),
		chromedp.SendKeys(css(`#signin-token`), e.tok[govOffice]),
		chromedp.Click(css(`#signin-form button[type="submit"]`)),
		shown(css(`.doc[data-id="`+ids[0]+`"]`)),
	)
	run("a page of two", chromedp.Navigate(e.ts.URL+"/#/out?limit=2"), shown(css(`#list-more`)))
	if got, want := order(), ids[2]+","+ids[1]; got != want {
		t.Fatalf("first page = %s, want %s", got, want)
	}
	run("the older one", chromedp.Click(css(`#list-more`)), shown(css(`.doc[data-id="`+ids[0]+`"]`)), chromedp.WaitNotVisible(css(`#list-more`)))
	if got, want := order(), ids[2]+","+ids[1]+","+ids[0]; got != want {
		t.Fatalf("after more = %s, want %s", got, want)
	}
}
