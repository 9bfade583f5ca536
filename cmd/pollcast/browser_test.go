package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/golang-jwt/jwt/v5"

	"github.com/pollcast/pollcast/internal/testsvc"
)

// The web of issue 5 in a real browser: the embeddable widget on a page of
// another origin, the hosted poll page and the dashboard, driven in Debian's
// headless Chromium through chromedp. One browser and one pollcast serve all
// the subtests; each subtest opens its own tab. Screenshots go to
// testdata/artifacts/ (gitignored) for a person to look at.

// artifactsDir is the repository's testdata/artifacts, seen from this package.
const artifactsDir = "../../testdata/artifacts"

func TestBrowser(t *testing.T) {
	b := startBrowser(t)
	a := startApp(t)
	host := startHost(t)
	// The app is reached as localhost, the host pages as 127.0.0.1: two origins.
	app := strings.Replace(a.url, "127.0.0.1", "localhost", 1)

	t.Run("WidgetOnAnotherOrigin", func(t *testing.T) { testWidgetCrossOrigin(t, b, a, host, app) })
	t.Run("KeyboardOnly", func(t *testing.T) { testKeyboardVoting(t, b, a, host, app) })
	t.Run("XSSShownAsText", func(t *testing.T) { testXSS(t, b, a, host, app) })
	t.Run("SSEFallback", func(t *testing.T) { testSSEFallback(t, b, a, host, app) })
	t.Run("States", func(t *testing.T) { testStates(t, b, a, host, app) })
	t.Run("Dashboard", func(t *testing.T) { testDashboard(t, b, a) })
	t.Run("Screenshots", func(t *testing.T) { testScreenshots(t, b, a, host, app) })
	t.Run("RateLimited", func(t *testing.T) {
		a := startApp(t, func(c *Config) { c.VoteRate = 0.2 }) // bursts of 1, one vote each 5 s
		testRateLimited(t, b, a, host, strings.Replace(a.url, "127.0.0.1", "localhost", 1))
	})
}

// testWidgetCrossOrigin: a page on another origin embeds two polls; voting
// shows thanks and results; REST votes move the bars within 1 s; a second
// vote from the device shows "already voted"; a closed poll shows closed.
func testWidgetCrossOrigin(t *testing.T, b *browser, a *app, host *hostSite, app string) {
	pa := a.createPoll(map[string]any{"allowed_origins": []string{host.origin()}})
	pb := a.createPoll(map[string]any{"question": "Which toppings? Pick two.", "kind": "multiple", "max_choices": 2})
	A, B := pa["id"].(string), pb["id"].(string)
	page := host.page("/news", `<!doctype html><html><head><title>Host news site</title>
<script>
window.events = [];
document.addEventListener('pollcast:vote', (e) => events.push(e.detail));
document.addEventListener('pollcast:results', (e) => { window.lastTotal = window.lastTotal || {}; lastTotal[e.detail.poll] = e.detail.results.total; });
</script>
<style>
/* hostile host CSS: none of it may reach the widget */
button, input, label, fieldset, ul, li { display: none !important; }
* { color: red !important; font-family: serif !important; }
</style></head><body>
<h1>Host news site</h1>
<p>An article.</p>
<script src="`+app+`/embed.js" data-poll="`+A+`" async></script>
<p>More article.</p>
<div id="second"></div>
<script src="`+app+`/embed.js" data-poll="`+B+`" data-target="#second" async></script>
</body></html>`)

	tb := b.tab(t, 1000, 900)
	tb.do(chromedp.Navigate(page))
	tb.wait("both widgets rendered", 10*time.Second,
		w(A)+`?.querySelector('button.vote')?.offsetParent && `+w(B)+`?.querySelector('button.vote')?.offsetParent`)
	if got := evalJS[string](tb, w(A)+`.querySelector('legend').textContent`); got != "Best pizza topping?" {
		t.Errorf("question of A = %q", got)
	}
	if c := evalJS[string](tb, `getComputedStyle(`+w(A)+`.querySelector('button.vote')).color`); c == "rgb(255, 0, 0)" {
		t.Errorf("host CSS reached the widget: button color %s", c)
	}

	// Vote for Pineapple (b) in A.
	tb.do(chromedp.Click(chromedp.JSPath(w(A)+`.querySelector('input[value="b"]')`)),
		chromedp.Click(chromedp.JSPath(w(A)+`.querySelector('button.vote')`)))
	tb.wait("thanks and results in A", 5*time.Second, hasText(A, "Thank you for voting!")+` && `+votesIs(A, "b", 1))
	if got := evalJS[string](tb, `JSON.stringify(events.map((e) => [e.poll, e.options]))`); got != `[["`+A+`",["b"]]]` {
		t.Errorf("pollcast:vote events = %s", got)
	}
	if evalJS[string](tb, `localStorage.getItem('pollcast:voter') || ''`) == "" {
		t.Error("no device voter id in localStorage")
	}

	// Votes cast meanwhile through the REST API move the bars without reload.
	for i, opt := range []string{"a", "a", "c"} {
		r := a.do("POST", "/v1/polls/"+A+"/votes", map[string]any{"options": []string{opt}, "voter": fmt.Sprintf("api-%d", i)})
		if r.Status != http.StatusAccepted {
			t.Fatalf("REST vote: %d %s", r.Status, r.Body)
		}
	}
	took := tb.wait("REST votes shown live", time.Second,
		votesIs(A, "a", 2)+` && `+votesIs(A, "b", 1)+` && `+votesIs(A, "c", 1)+` && `+hasText(A, "4 votes"))
	t.Logf("REST votes reached the widget %v after the last 202", took.Round(time.Millisecond))
	tb.wait("pollcast:results event", 2*time.Second, `window.lastTotal && lastTotal[`+js(A)+`] === 4`)
	if got := evalJS[string](tb, w(A)+`.querySelector('li[data-option="a"] .fill').style.width`); got != "50%" {
		t.Errorf("the bar of option a is %q wide, want 50%%", got)
	}

	// B is multiple choice with max_choices 2: a third box is disabled.
	tb.do(chromedp.Click(chromedp.JSPath(w(B)+`.querySelector('input[value="a"]')`)),
		chromedp.Click(chromedp.JSPath(w(B)+`.querySelector('input[value="c"]')`)))
	if !evalJS[bool](tb, w(B)+`.querySelector('input[value="b"]').disabled`) {
		t.Error("a third choice is not disabled at max_choices 2")
	}
	tb.do(chromedp.Click(chromedp.JSPath(w(B) + `.querySelector('button.vote')`)))
	tb.wait("thanks in B", 5*time.Second, hasText(B, "Thank you for voting!")+` && `+votesIs(B, "a", 1)+` && `+votesIs(B, "c", 1))

	// The same device again: remembered on reload...
	tb.do(chromedp.Reload())
	tb.wait("already voted after reload", 5*time.Second,
		hasText(A, "You have already voted in this poll.")+` && !`+w(A)+`.querySelector('form') && `+votesIs(A, "b", 1))
	// ...and refused by the server when the page forgot it.
	tb.do(chromedp.Evaluate[chromedp.Void](`localStorage.removeItem('pollcast:voted:`+A+`')`), chromedp.Reload())
	tb.wait("the form again", 5*time.Second, w(A)+`?.querySelector('input[value="a"]')?.offsetParent`)
	tb.do(chromedp.Click(chromedp.JSPath(w(A)+`.querySelector('input[value="a"]')`)),
		chromedp.Click(chromedp.JSPath(w(A)+`.querySelector('button.vote')`)))
	tb.wait("already voted from the server", 5*time.Second, hasText(A, "You have already voted in this poll.")+` && `+votesIs(A, "a", 2))
	if n := a.total(A); n != 4 {
		t.Errorf("total of A = %d after a second vote of the device, want 4", n)
	}

	// A dropped connection comes back by itself, and live updates go on.
	tb.do(chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-pollcast="` + A + `"]').parentElement.pollcastWidget.conn.close()`))
	tb.wait("reconnected", 5*time.Second, hasText(A, "Live"))
	if r := a.do("POST", "/v1/polls/"+A+"/votes", map[string]any{"options": []string{"c"}, "voter": "api-after-reconnect"}); r.Status != http.StatusAccepted {
		t.Fatalf("REST vote: %d %s", r.Status, r.Body)
	}
	tb.wait("live after reconnecting", 2*time.Second, votesIs(A, "c", 2))

	// Closing the poll shows it closed, live and after a reload.
	if r := a.admin("POST", "/v1/polls/"+A+"/close", nil); r.Status != http.StatusOK {
		t.Fatalf("close: %d %s", r.Status, r.Body)
	}
	tb.wait("closed, live", 5*time.Second, hasText(A, "This poll is closed."))
	tb.do(chromedp.Reload())
	tb.wait("closed after reload", 5*time.Second, hasText(A, "This poll is closed.")+` && !`+w(A)+`.querySelector('form') && `+votesIs(A, "c", 2))

	// The widget sent the embedding page's host as the referrer.
	eventually(t, 15*time.Second, "referrer 127.0.0.1 in the analytics of A", func() bool {
		r := a.admin("GET", "/v1/polls/"+A+"/analytics/breakdown?by=referrer", nil)
		return r.Status == http.StatusOK && bytes.Contains(r.Body, []byte(`"key":"127.0.0.1"`))
	})
}

// testKeyboardVoting votes with the keyboard alone and checks that focus is
// visible.
func testKeyboardVoting(t *testing.T, b *browser, a *app, host *hostSite, app string) {
	id := a.createPoll(map[string]any{"question": "Keyboard or mouse?"})["id"].(string)
	page := host.page("/keyboard", `<!doctype html><html><head><title>Keyboard</title></head><body>
<label>Search <input id="search"></label>
<script src="`+app+`/embed.js" data-poll="`+id+`" async></script>
<a href="#after">after</a>
</body></html>`)
	tb := b.tab(t, 900, 800)
	tb.do(chromedp.Navigate(page))
	tb.wait("widget rendered", 10*time.Second, w(id)+`?.querySelector('button.vote')?.offsetParent`)
	tb.do(chromedp.Focus(chromedp.ID("search")), chromedp.KeyEvent(kb.Tab))
	tb.wait("focus on the first option", 2*time.Second, w(id)+`.activeElement?.value === "a"`)
	tb.do(chromedp.KeyEvent(kb.ArrowDown))
	tb.wait("the second option chosen", 2*time.Second, w(id)+`.activeElement?.value === "b" && `+w(id)+`.activeElement.checked`)
	tb.do(chromedp.KeyEvent(kb.Tab))
	tb.wait("focus on Vote", 2*time.Second, w(id)+`.activeElement?.classList.contains('vote')`)
	if o := evalJS[string](tb, `getComputedStyle(`+w(id)+`.activeElement).outlineStyle`); o == "none" {
		t.Errorf("focused Vote button shows no outline (outline-style %s)", o)
	}
	if o := evalJS[string](tb, `(() => { const l = `+w(id)+`.querySelector('input[value="b"]').closest('label'); return getComputedStyle(l).borderColor; })()`); o == "" {
		t.Error("no border on the chosen option")
	}
	tb.do(chromedp.KeyEvent(kb.Enter))
	tb.wait("thanks", 5*time.Second, hasText(id, "Thank you for voting!")+` && `+votesIs(id, "b", 1))
	tb.wait("focus moved to the results", 2*time.Second, w(id)+`.activeElement?.classList.contains('q')`)
	if got := evalJS[string](tb, w(id)+`.querySelector('[aria-live]').textContent`); !strings.Contains(got, "Results:") {
		t.Errorf("the live region announced %q", got)
	}
	eventually(t, 5*time.Second, "the keyboard vote counted", func() bool {
		return optionVotes(a.results(id), "b") == 1
	})
}

// testXSS: question and options that are HTML and script payloads are shown
// as text everywhere and run nothing.
func testXSS(t *testing.T, b *browser, a *app, host *hostSite, app string) {
	q := `<img src=x onerror="window.__xss=1"></script><script>window.__xss=2</script>`
	labels := []string{`<img src=x onerror=window.__xss=3>`, `</script><svg onload=window.__xss=4>`, `"><iframe src=javascript:window.__xss=5>`}
	id := a.createPoll(map[string]any{"question": q, "options": []map[string]string{{"label": labels[0]}, {"label": labels[1]}, {"label": labels[2]}}})["id"].(string)
	checkText := func(tb *tab, where string) {
		t.Helper()
		if got := evalJS[string](tb, w(id)+`.querySelector('.q').textContent`); got != q {
			t.Errorf("%s: question shown as %q", where, got)
		}
		got := evalJS[[]string](tb, `[...`+w(id)+`.querySelectorAll('.opt span, .name')].map((e) => e.textContent)`)
		if strings.Join(got, "|") != strings.Join(labels, "|") {
			t.Errorf("%s: options shown as %q", where, got)
		}
		if n := evalJS[int](tb, w(id)+`.querySelectorAll('img, script, svg, iframe').length + document.querySelectorAll('img, svg:not(.qr svg), iframe').length`); n != 0 {
			t.Errorf("%s: %d elements made from poll text", where, n)
		}
		if x := evalJS[string](tb, `String(window.__xss)`); x != "undefined" {
			t.Errorf("%s: a payload ran: window.__xss = %s", where, x)
		}
	}

	tb := b.tab(t, 900, 800)
	tb.do(chromedp.Navigate(host.page("/xss", `<!doctype html><html><head><title>XSS</title></head><body>
<script src="`+app+`/embed.js" data-poll="`+id+`" async></script></body></html>`)))
	tb.wait("widget rendered", 10*time.Second, w(id)+`?.querySelector('button.vote')`)
	checkText(tb, "embedded form")
	tb.do(chromedp.Click(chromedp.JSPath(w(id)+`.querySelector('input[value="b"]')`)),
		chromedp.Click(chromedp.JSPath(w(id)+`.querySelector('button.vote')`)))
	tb.wait("results", 5*time.Second, votesIs(id, "b", 1))
	checkText(tb, "embedded results")

	// The hosted page renders the question on the server too.
	tb.do(chromedp.Navigate(a.url + "/p/" + id))
	tb.wait("hosted widget rendered", 10*time.Second, w(id)+`?.querySelector('legend.q')`)
	checkText(tb, "hosted page")
	if got := evalJS[string](tb, `document.title`); got != q+" · pollcast" {
		t.Errorf("hosted page title = %q", got)
	}
	if got := evalJS[string](tb, `document.querySelector('meta[property="og:title"]').content`); got != q {
		t.Errorf("og:title = %q", got)
	}

	// The dashboard lists and shows it as text.
	tb.signIn(a.url)
	tb.do(chromedp.Navigate(a.url + "/dashboard#/"))
	tb.wait("listed", 5*time.Second, `document.querySelector('tr[data-poll="`+id+`"] a')?.textContent === `+js(q))
	tb.do(chromedp.Navigate(a.url + "/dashboard#/polls/" + id))
	tb.wait("poll page", 5*time.Second, `document.querySelector('h1')?.textContent === `+js(q)+` && document.querySelectorAll('.bar .name').length === 3`)
	if got := evalJS[[]string](tb, `[...document.querySelectorAll('.bar .name')].map((e) => e.textContent)`); strings.Join(got, "|") != strings.Join(labels, "|") {
		t.Errorf("dashboard options shown as %q", got)
	}
	if x := evalJS[string](tb, `String(window.__xss) + document.querySelectorAll('main img, main iframe').length`); x != "undefined0" {
		t.Errorf("dashboard: a payload ran or rendered: %s", x)
	}
}

// testSSEFallback: without WebSocket the widget follows the poll over SSE.
func testSSEFallback(t *testing.T, b *browser, a *app, host *hostSite, app string) {
	id := a.createPoll(map[string]any{"question": "Server-Sent Events?"})["id"].(string)
	tb := b.tab(t, 900, 800)
	tb.do(chromedp.Navigate(host.page("/sse", `<!doctype html><html><head><title>SSE</title>
<script>
window.WebSocket = undefined;
window.sources = [];
const Real = window.EventSource;
window.EventSource = class extends Real { constructor(u, o) { super(u, o); sources.push(String(u)); } };
</script></head><body>
<script src="`+app+`/embed.js" data-poll="`+id+`" async></script></body></html>`)))
	tb.wait("live over SSE", 10*time.Second, hasText(id, "Live")+` && sources.length === 1 && sources[0].includes('/v1/polls/`+id+`/events?voter=d-')`)
	tb.do(chromedp.Click(chromedp.JSPath(w(id)+`.querySelector('input[value="c"]')`)),
		chromedp.Click(chromedp.JSPath(w(id)+`.querySelector('button.vote')`)))
	tb.wait("thanks", 5*time.Second, hasText(id, "Thank you for voting!")+` && `+votesIs(id, "c", 1))
	if r := a.do("POST", "/v1/polls/"+id+"/votes", map[string]any{"options": []string{"c"}, "voter": "sse-1"}); r.Status != http.StatusAccepted {
		t.Fatalf("REST vote: %d %s", r.Status, r.Body)
	}
	took := tb.wait("REST vote shown over SSE", time.Second, votesIs(id, "c", 2))
	t.Logf("REST vote reached the SSE widget %v after its 202", took.Round(time.Millisecond))
}

// testStates: scheduled, after_vote, after_close, token and missing polls
// say what is going on in plain words.
func testStates(t *testing.T, b *browser, a *app, host *hostSite, app string) {
	sched := a.createPoll(map[string]any{"question": "Opens later", "opens_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})["id"].(string)
	afterVote := a.createPoll(map[string]any{"question": "After vote", "results_visibility": "after_vote"})["id"].(string)
	afterClose := a.createPoll(map[string]any{"question": "After close", "results_visibility": "after_close"})["id"].(string)
	tokenPoll := a.createPoll(map[string]any{"question": "Members only", "dedupe": "token"})
	tokenID := tokenPoll["id"].(string)
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "member-7", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(tokenPoll["voter_secret"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	tag := func(id, extra string) string {
		return `<div id="w-` + id + `"></div><script src="` + app + `/embed.js" data-poll="` + id + `" data-target="#w-` + id + `" ` + extra + ` async></script>`
	}
	tb := b.tab(t, 1000, 1400)
	// A broken tag first (an invalid target, no poll): the others still mount.
	tb.do(chromedp.Navigate(host.page("/states", `<!doctype html><html><head><title>States</title></head><body>`+
		`<script src="`+app+`/embed.js" data-poll="" data-target="[[" async></script>`+tag(sched, "")+tag(afterVote, "")+tag(afterClose, "")+tag(tokenID, "")+
		`<div id="w-tok2"></div><script>window.tokenMount = () => pollcast.mount(document.getElementById('w-tok2'), {poll: `+js(tokenID)+`, voter: `+js(token)+`, theme: 'dark'});</script>`+
		tag("nosuchpoll12", "")+`</body></html>`)))

	tb.wait("scheduled", 10*time.Second, hasText(sched, "This poll opens")+` && `+w(sched)+`.querySelector('button.vote').disabled`)
	// Errors are readable from another site: a missing poll is said to be missing.
	tb.wait("missing", 10*time.Second, hasText("nosuchpoll12", "This poll does not exist or was deleted."))
	tb.wait("token poll without a token", 10*time.Second, hasText(tokenID, "Sign in on this website to vote.")+` && `+w(tokenID)+`.querySelector('button.vote').disabled`)

	// after_vote: no results before the vote, results after it.
	tb.wait("after_vote form", 10*time.Second, w(afterVote)+`?.querySelector('button.vote') && !`+w(afterVote)+`.querySelector('button.link')`)
	tb.do(chromedp.Click(chromedp.JSPath(w(afterVote)+`.querySelector('input[value="a"]')`)),
		chromedp.Click(chromedp.JSPath(w(afterVote)+`.querySelector('button.vote')`)))
	tb.wait("after_vote results after voting", 5*time.Second, hasText(afterVote, "Thank you for voting!")+` && `+votesIs(afterVote, "a", 1))

	// after_close: thanks, then results once the owner closes it.
	tb.do(chromedp.Click(chromedp.JSPath(w(afterClose)+`.querySelector('input[value="b"]')`)),
		chromedp.Click(chromedp.JSPath(w(afterClose)+`.querySelector('button.vote')`)))
	tb.wait("after_close hidden after voting", 5*time.Second, hasText(afterClose, "Results will be shown when the poll closes."))
	if r := a.admin("POST", "/v1/polls/"+afterClose+"/close", nil); r.Status != http.StatusOK {
		t.Fatalf("close: %d", r.Status)
	}
	tb.wait("after_close results once closed", 5*time.Second, hasText(afterClose, "This poll is closed.")+` && `+votesIs(afterClose, "b", 1))

	// On the poll's own origin the 404 is readable too.
	tb2 := b.tab(t, 900, 700)
	tb2.do(chromedp.Navigate(a.url+"/p/"+sched),
		chromedp.Evaluate[chromedp.Void](`pollcast.mount(document.body.appendChild(document.createElement('div')), {poll: 'nosuchpoll12'})`))
	tb2.wait("missing, same origin", 10*time.Second, hasText("nosuchpoll12", "This poll does not exist or was deleted."))

	// A poll deleted while shown says so, and the widget stops following it.
	doomed := a.createPoll(map[string]any{"question": "Soon gone"})["id"].(string)
	tb2.do(chromedp.Navigate(host.page("/doomed", `<!doctype html><html><body>`+tag(doomed, "")+`</body></html>`)))
	tb2.wait("doomed poll live", 10*time.Second, w(doomed)+`?.querySelector('button.vote') && `+hasText(doomed, "Live"))
	if r := a.admin("DELETE", "/v1/polls/"+doomed, nil); r.Status != http.StatusNoContent && r.Status != http.StatusOK {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	tb2.wait("deleted poll", 10*time.Second, hasText(doomed, "This poll does not exist or was deleted.")+` && !`+w(doomed)+`.querySelector('button.vote')`)

	// A poll limited to one news site: another site's page says it cannot
	// show it; the poll's hosted page, served by pollcast, can vote in it.
	limited := a.createPoll(map[string]any{"question": "Readers only", "allowed_origins": []string{"https://news.example.com"}})["id"].(string)
	tb2.do(chromedp.Navigate(host.page("/limited", `<!doctype html><html><body>`+tag(limited, "")+`</body></html>`)))
	tb2.wait("limited poll on another site", 10*time.Second, hasText(limited, "This poll cannot be shown on this website."))
	tb2.do(chromedp.Navigate(a.url + "/p/" + limited))
	tb2.wait("limited poll on its hosted page", 10*time.Second, w(limited)+`?.querySelector('button.vote')`)
	tb2.do(chromedp.Click(chromedp.JSPath(w(limited)+`.querySelector('input[value="a"]')`)),
		chromedp.Click(chromedp.JSPath(w(limited)+`.querySelector('button.vote')`)))
	tb2.wait("limited poll voted on its hosted page", 5*time.Second, hasText(limited, "Thank you for voting!")+` && `+votesIs(limited, "a", 1))

	// A token from the host page's backend lets the member vote, once.
	tb.do(chromedp.Evaluate[chromedp.Void](`tokenMount()`))
	tb.wait("token widget", 10*time.Second, `document.querySelector('#w-tok2 [data-pollcast]')?.shadowRoot.querySelector('button.vote:not(:disabled)')`)
	tok2 := `document.querySelector('#w-tok2 [data-pollcast]').shadowRoot`
	tb.do(chromedp.Click(chromedp.JSPath(tok2+`.querySelector('input[value="c"]')`)),
		chromedp.Click(chromedp.JSPath(tok2+`.querySelector('button.vote')`)))
	tb.wait("token vote counted", 5*time.Second, tok2+`.textContent.includes('Thank you for voting!') && `+tok2+`.querySelector('li[data-option="c"]')?.dataset.votes === "1"`)
}

// testRateLimited: a vote refused by the rate limit says so and can be retried.
func testRateLimited(t *testing.T, b *browser, a *app, host *hostSite, app string) {
	id := a.createPoll(map[string]any{"question": "Rate limited?"})["id"].(string)
	tb := b.tab(t, 900, 800)
	tb.do(chromedp.Navigate(host.page("/rate", `<!doctype html><html><head><title>Rate</title></head><body>
<script src="`+app+`/embed.js" data-poll="`+id+`" async></script></body></html>`)))
	tb.wait("widget rendered", 10*time.Second, w(id)+`?.querySelector('button.vote')`)
	// This test and the browser share 127.0.0.1: use up its burst.
	for i := 0; ; i++ {
		r := a.do("POST", "/v1/polls/"+id+"/votes", map[string]any{"options": []string{"a"}, "voter": fmt.Sprintf("rl-%d", i)})
		if r.Status == http.StatusTooManyRequests {
			break
		}
		if i > 10 {
			t.Fatalf("no 429 after %d votes: %d", i, r.Status)
		}
	}
	tb.do(chromedp.Click(chromedp.JSPath(w(id)+`.querySelector('input[value="b"]')`)),
		chromedp.Click(chromedp.JSPath(w(id)+`.querySelector('button.vote')`)))
	tb.wait("rate limited, in plain words", 5*time.Second, hasText(id, "Too many votes from your network right now. Please try again in")+
		` && !`+w(id)+`.querySelector('button.vote').hasAttribute('aria-disabled') && `+w(id)+`.querySelector('form')`)
}

// testDashboard: sign in, create a poll (meeting the API's validation on
// the way), see it listed, open it, watch REST votes arrive live, read its
// analytics, close it.
func testDashboard(t *testing.T, b *browser, a *app) {
	tb := b.tab(t, 1280, 900)
	tb.do(chromedp.Navigate(a.url + "/dashboard"))
	tb.wait("sign-in form", 10*time.Second, `document.getElementById('key')?.offsetParent`)
	tb.do(chromedp.SendKeys(chromedp.ID("key"), "not-a-key"), chromedp.Click(chromedp.CSS(`form button[type=submit]`)))
	tb.wait("wrong key refused", 5*time.Second, `document.querySelector('[role=alert]')?.textContent === 'That API key was not accepted.'`)
	tb.do(chromedp.Evaluate[chromedp.Void](`document.getElementById('key').value = ''`), chromedp.SendKeys(chromedp.ID("key"), testAdminKey),
		chromedp.Click(chromedp.CSS(`form button[type=submit]`)))
	tb.wait("poll list", 5*time.Second, `document.querySelector('h1')?.textContent === 'Polls' && !document.getElementById('nav').hidden`)
	if got := evalJS[string](tb, `sessionStorage.getItem('pollcast:key')`); got != testAdminKey {
		t.Errorf("key in session storage = %q", got)
	}

	// Create, first with a max_choices the API refuses.
	question := "Which day works for the retro?"
	tb.do(chromedp.Click(chromedp.CSS(`nav a[href="#/new"]`)))
	tb.wait("new poll form", 5*time.Second, `document.getElementById('question')?.offsetParent`)
	tb.do(chromedp.SendKeys(chromedp.ID("question"), question),
		chromedp.SendKeys(chromedp.JSPath(`document.querySelectorAll('.options input')[0]`), "Monday"),
		chromedp.SendKeys(chromedp.JSPath(`document.querySelectorAll('.options input')[1]`), "Tuesday"),
		chromedp.Click(chromedp.Search(`//button[text()="Add option"]`)),
		chromedp.SendKeys(chromedp.JSPath(`document.querySelectorAll('.options input')[2]`), "Wednesday"),
		chromedp.SetValue(chromedp.ID("kind"), "multiple"),
		chromedp.SetValue(chromedp.ID("max_choices"), "9"),
		chromedp.Click(chromedp.Search(`//button[text()="Create poll"]`)))
	tb.wait("the API's validation message beside the field", 5*time.Second,
		`document.querySelector('form [role=alert]')?.textContent.startsWith('max_choices:') && document.getElementById('max_choices').getAttribute('aria-invalid') === 'true'`+
			` && document.querySelector('[data-field="max_choices"] .field-error').textContent !== ''`)
	tb.do(chromedp.SetValue(chromedp.ID("max_choices"), "2"), chromedp.Click(chromedp.Search(`//button[text()="Create poll"]`)))
	tb.wait("the new poll's page", 5*time.Second, `location.hash.startsWith('#/polls/') && document.querySelector('h1')?.textContent === `+js(question))
	id := strings.TrimPrefix(evalJS[string](tb, `location.hash`), "#/polls/")
	p := a.admin("GET", "/v1/polls/"+id, nil).JSON()
	if p["kind"] != "multiple" || p["max_choices"] != 2.0 || len(p["options"].([]any)) != 3 {
		t.Errorf("created poll = %v", p)
	}

	// Listed; open it from the list.
	tb.do(chromedp.Click(chromedp.CSS(`nav a[href="#/"]`)))
	tb.wait("listed", 5*time.Second, `document.querySelector('tr[data-poll="`+id+`"] a')?.textContent === `+js(question)+
		` && document.querySelector('tr[data-poll="`+id+`"] .badge').textContent === 'open'`)
	tb.screenshot("dashboard-list.png", "")
	tb.do(chromedp.Click(chromedp.CSS(`tr[data-poll="` + id + `"] a`)))
	tb.wait("poll page, live", 5*time.Second, `document.querySelector('.live-state.on') && document.getElementById('snippet')`)
	if got := evalJS[string](tb, `document.getElementById('snippet').value`); got != `<script src="`+a.url+`/embed.js" data-poll="`+id+`" async></script>` {
		t.Errorf("embed snippet = %s", got)
	}
	if got := evalJS[string](tb, `document.getElementById('hosted').value`); got != a.url+"/p/"+id {
		t.Errorf("hosted link = %s", got)
	}

	// Votes through the API change the counts live.
	for i, opts := range [][]string{{"a"}, {"a", "b"}, {"c"}} {
		if r := a.do("POST", "/v1/polls/"+id+"/votes", map[string]any{"options": opts, "voter": fmt.Sprintf("dash-%d", i)}); r.Status != http.StatusAccepted {
			t.Fatalf("REST vote: %d %s", r.Status, r.Body)
		}
	}
	took := tb.wait("live counts", time.Second, `document.getElementById('total')?.textContent === '3'`+
		` && document.querySelector('.bar[data-option="a"]')?.dataset.votes === '2' && document.querySelector('.bar[data-option="c"]')?.dataset.votes === '1'`)
	t.Logf("REST votes reached the dashboard %v after the last 202", took.Round(time.Millisecond))
	tb.wait("votes per second drawn", 3*time.Second, `document.querySelector('.chart.rate polyline')`)

	// Analytics: the timeline and the breakdowns, once the sink has the votes.
	deadline := time.Now().Add(15 * time.Second)
	for !tb.try(time.Second, `document.querySelector('.chart.timeline svg rect.tbar') && document.querySelector('.breakdown[data-by="device"] svg')`) {
		if time.Now().After(deadline) {
			t.Fatalf("no analytics after 15 s; page: %s", tb.pageText())
		}
		tb.do(chromedp.Click(chromedp.Search(`//button[text()="Refresh"]`)))
	}
	tb.screenshot("dashboard-poll.png", "")
	tb.do(chromedp.EmulateViewport(390, 844))
	tb.screenshot("dashboard-poll-390.png", "")
	tb.do(chromedp.EmulateViewport(1280, 900))

	// When the analytics endpoints answer 404, a calm "no analytics yet".
	tb.do(chromedp.Evaluate[chromedp.Void](`(() => {
		const real = window.fetch;
		window.fetch = (u, o) => String(u).includes('/analytics/')
			? Promise.resolve(new Response('{"code":"not_found","status":404}', {status: 404, headers: {'Content-Type': 'application/problem+json'}}))
			: real(u, o);
	})()`), chromedp.Click(chromedp.Search(`//button[text()="Refresh"]`)))
	tb.wait("no analytics yet", 5*time.Second, `document.getElementById('no-analytics')?.textContent.startsWith('No analytics yet.') && !document.querySelector('.analytics-body .error')`)

	// Edit the question.
	tb.do(chromedp.Click(chromedp.Search(`//a[text()="Edit"]`)))
	tb.wait("edit form", 5*time.Second, `document.getElementById('question')?.value === `+js(question))
	question = "Which day works for the retro, really?"
	tb.do(chromedp.SetValue(chromedp.ID("question"), question), chromedp.Click(chromedp.Search(`//button[text()="Save changes"]`)))
	tb.wait("saved", 5*time.Second, `document.querySelector('h1')?.textContent === `+js(question)+` && document.querySelector('.live-state.on')`)
	if got := a.do("GET", "/v1/polls/"+id, nil).JSON()["question"]; got != question {
		t.Errorf("question after edit = %v", got)
	}

	// Close it with the button.
	tb.do(chromedp.Click(chromedp.ID("toggle-open")))
	tb.wait("closed", 5*time.Second, `document.querySelector('.meta .badge')?.textContent === 'closed' && document.getElementById('toggle-open').textContent === 'Open poll'`)
	if st := a.do("GET", "/v1/polls/"+id, nil).JSON()["status"]; st != "closed" {
		t.Errorf("status after Close poll = %v", st)
	}

	// A token poll's page shows the voter secret on request.
	tokenPoll := a.createPoll(map[string]any{"question": "Members only", "dedupe": "token"})
	tb.do(chromedp.Navigate(a.url + "/dashboard#/polls/" + tokenPoll["id"].(string)))
	tb.wait("voter secret hidden", 5*time.Second, `document.getElementById('voter-secret')?.type === 'password'`)
	tb.do(chromedp.Click(chromedp.Search(`//button[text()="Show"]`)))
	tb.wait("voter secret shown", 5*time.Second, `document.getElementById('voter-secret').type === 'text' && document.getElementById('voter-secret').value === `+js(tokenPoll["voter_secret"].(string)))

	// A poll deleted elsewhere is no longer followed.
	if r := a.admin("DELETE", "/v1/polls/"+tokenPoll["id"].(string), nil); r.Status >= 300 {
		t.Fatalf("delete: %d", r.Status)
	}
	tb.wait("deleted poll", 5*time.Second, `document.querySelector('.live-state')?.textContent === 'This poll does not exist or was deleted.'`)

	// Sign out forgets the key.
	tb.do(chromedp.Click(chromedp.ID("signout")))
	tb.wait("signed out", 5*time.Second, `document.getElementById('key') && sessionStorage.getItem('pollcast:key') === null`)
}

// testScreenshots saves the widget in light, dark and at 320 px, and the
// hosted page, for a person to look at.
func testScreenshots(t *testing.T, b *browser, a *app, host *hostSite, app string) {
	opts := []map[string]string{{"label": "Lisbon"}, {"label": "Kraków"}, {"label": "Reykjavík"}, {"label": "Somewhere with reliable Wi-Fi and very good coffee"}}
	id := a.createPoll(map[string]any{"question": "Where should the team offsite be this year?", "options": opts})["id"].(string)
	narrow := a.createPoll(map[string]any{"question": "Where should the team offsite be this year?", "options": opts,
		"closes_at": time.Now().Add(72 * time.Hour).UTC().Format(time.RFC3339)})["id"].(string)
	for i, o := range []string{"a", "a", "b", "c", "d", "d", "d", "a", "b", "d", "a"} {
		for _, p := range []string{id, narrow} {
			if r := a.do("POST", "/v1/polls/"+p+"/votes", map[string]any{"options": []string{o}, "voter": fmt.Sprintf("shot-%d", i)}); r.Status != http.StatusAccepted {
				t.Fatalf("vote: %d %s", r.Status, r.Body)
			}
		}
	}
	page := host.page("/themes", `<!doctype html><html><head><title>Themes</title><style>
body { margin: 0; font-family: Georgia, serif; }
section { padding: 24px; }
.dark { background: #0d1117; color: #e6edf3; }
</style></head><body>
<section><p>A light page.</p><div id="light"></div></section>
<section class="dark"><p>A dark page.</p><div id="dark"></div></section>
<script src="`+app+`/embed.js" data-poll="`+id+`" data-target="#light" async></script>
<script src="`+app+`/embed.js" data-poll="`+id+`" data-target="#dark" data-theme="dark" async></script>
</body></html>`)
	tb := b.tab(t, 760, 1200)
	tb.do(chromedp.Navigate(page))
	tb.wait("both rendered, live", 10*time.Second, `[...document.querySelectorAll('[data-pollcast]')].every((h) => h.shadowRoot.textContent.includes('Live'))`)
	tb.do(chromedp.Click(chromedp.JSPath(`document.querySelector('#dark [data-pollcast]').shadowRoot.querySelector('input[value="b"]')`)))
	checkContrast(t, tb, "forms")
	tb.screenshot("widget-light-form.png", `document.querySelector('#light')`)
	tb.screenshot("widget-dark-form.png", `document.querySelector('#dark').parentElement`)
	light := `document.querySelector('#light [data-pollcast]').shadowRoot`
	tb.do(chromedp.Click(chromedp.JSPath(light+`.querySelector('input[value="b"]')`)),
		chromedp.Click(chromedp.JSPath(light+`.querySelector('button.vote')`)))
	tb.wait("light results", 5*time.Second, light+`.querySelector('li[data-option="b"]')?.dataset.votes === "3"`)
	tb.screenshot("widget-light-results.png", `document.querySelector('#light')`)
	tb.do(chromedp.Reload())
	dark := `document.querySelector('#dark [data-pollcast]')?.shadowRoot`
	tb.wait("dark results", 10*time.Second, dark+`?.querySelector('li[data-option="b"]')?.dataset.votes === "3" && `+dark+`.textContent.includes('Live')`)
	checkContrast(t, tb, "results")
	tb.screenshot("widget-dark-results.png", `document.querySelector('#dark').parentElement`)

	// 320 px wide: nothing sticks out.
	nt := b.tab(t, 320, 900)
	nt.do(chromedp.Navigate(host.page("/narrow", `<!doctype html><html><head><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Narrow</title><style>body { margin: 0; }</style></head><body>
<script src="`+app+`/embed.js" data-poll="`+narrow+`" data-theme="light" async></script></body></html>`)))
	nt.wait("narrow widget", 10*time.Second, w(narrow)+`?.textContent.includes('Live')`)
	if got := evalJS[int](nt, `document.documentElement.scrollWidth`); got > 320 {
		t.Errorf("page is %d px wide at 320 px: the widget overflows", got)
	}
	nt.screenshot("widget-320-form.png", "")
	nt.do(chromedp.Click(chromedp.JSPath(w(narrow)+`.querySelector('input[value="d"]')`)),
		chromedp.Click(chromedp.JSPath(w(narrow)+`.querySelector('button.vote')`)))
	nt.wait("narrow results", 5*time.Second, votesIs(narrow, "d", 5))
	if got := evalJS[int](nt, `document.documentElement.scrollWidth`); got > 320 {
		t.Errorf("page is %d px wide at 320 px with results", got)
	}
	nt.screenshot("widget-320-results.png", "")

	// The hosted page, wide and on a phone.
	nt.do(chromedp.EmulateViewport(1100, 700), chromedp.Navigate(a.url+"/p/"+id))
	nt.wait("hosted page", 10*time.Second, w(id)+`?.textContent.includes('Live') && document.querySelector('.qr svg path')`)
	nt.screenshot("hosted-page.png", "")
	nt.do(chromedp.EmulateViewport(390, 844))
	nt.screenshot("hosted-page-390.png", "")
	nt.do(chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
		return err
	}), chromedp.EmulateViewport(1100, 700))
	nt.wait("dark hosted page", 5*time.Second, `getComputedStyle(document.body).backgroundColor === 'rgb(17, 19, 22)'`)
	checkContrast(t, nt, "hosted page, dark")
	nt.screenshot("hosted-page-dark.png", "")
}

// checkContrast fails the test for text in the page's widgets with less
// than the 4.5:1 contrast of WCAG AA against its background.
func checkContrast(t *testing.T, tb *tab, where string) {
	t.Helper()
	low := evalJS[[]string](tb, `(() => {
		const rgb = (c) => c.match(/[\d.]+/g).map(Number);
		const lum = (c) => {
			const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
			return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
		};
		const bg = (el) => {
			for (let e = el; e; e = e.parentElement || e.getRootNode().host) {
				const c = rgb(getComputedStyle(e).backgroundColor);
				if (c.length < 4 || c[3] > 0) return c;
			}
			return [255, 255, 255];
		};
		const low = [];
		for (const root of [...document.querySelectorAll('[data-pollcast]')].map((h) => h.shadowRoot)) {
			for (const el of root.querySelectorAll('.q, .opt span, .hint, button:not(:disabled), .name, .pct, .cnt, .msg, .foot span')) {
				if (!el.textContent.trim() || !el.getClientRects().length) continue;
				const [hi, lo] = [lum(rgb(getComputedStyle(el).color)), lum(bg(el))].sort((x, y) => y - x);
				const ratio = (hi + 0.05) / (lo + 0.05);
				if (ratio < 4.5) low.push(root.host.dataset.theme + ' ' + el.className + ' "' + el.textContent.slice(0, 24) + '" ' + ratio.toFixed(2));
			}
		}
		return low;
	})()`)
	for _, l := range low {
		t.Errorf("%s: contrast under 4.5:1: %s", where, l)
	}
}

// ---- the browser and its tabs ----------------------------------------------

type browser struct{ ctx context.Context }

// startBrowser starts headless Chromium with a fresh profile, or skips the
// test when it is not installed (fails it under POLLCAST_TEST_STRICT=1).
func startBrowser(t *testing.T) *browser {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		msg := "chromium is not installed (apt-get install chromium; make test installs it)"
		if testsvc.Strict() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		acancel()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{ctx: ctx}
}

// tab is one browser tab of a test. Uncaught exceptions and CSP violations
// on its pages fail the test.
type tab struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	problems []string
}

func (b *browser) tab(t *testing.T, width, height int64) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	if err := chromedp.Do(ctx); err != nil { // opens the tab: no timeout on this first call
		cancel()
		t.Fatalf("open tab: %v", err)
	}
	tb := &tab{t: t, ctx: ctx}
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				tb.mu.Lock()
				tb.problems = append(tb.problems, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line+1))
				tb.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		for _, p := range tb.problems {
			t.Errorf("browser console: %s", p)
		}
	})
	tb.do(chromedp.EmulateViewport(width, height))
	return tb
}

// do runs browser actions, failing the test on an error.
func (tb *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.t.Fatalf("browser: %v\npage: %s", err, tb.pageText())
	}
}

// evalJS evaluates a JavaScript expression in the tab's page.
func evalJS[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// try polls a JavaScript condition in the page until it holds or timeout
// passes, and reports whether it held.
func (tb *tab) try(timeout time.Duration, cond string) bool {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, timeout+10*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool]("!!("+cond+")",
		chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(10*time.Millisecond)))
	return err == nil
}

// wait polls a JavaScript condition until it holds, failing the test after
// timeout; it returns how long the condition took.
func (tb *tab) wait(what string, timeout time.Duration, cond string) time.Duration {
	tb.t.Helper()
	start := time.Now()
	if !tb.try(timeout, cond) {
		tb.t.Fatalf("waited %v for %s\ncondition: %s\npage: %s", timeout, what, cond, tb.pageText())
	}
	return time.Since(start)
}

// pageText is the page's text, widgets included, for failure messages.
func (tb *tab) pageText() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[location.href, document.body ? document.body.innerText : '',
		...[...document.querySelectorAll('[data-pollcast]')].map((h) => 'widget ' + h.dataset.pollcast + ': ' + (h.shadowRoot ? h.shadowRoot.textContent : ''))].join('\n')`))
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return s
}

// screenshot saves a PNG of the element that sel (JavaScript) gives, or of
// the whole page when sel is empty, under testdata/artifacts.
func (tb *tab) screenshot(name, sel string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	// Let bar transitions finish: wait until no animation runs.
	tb.try(2*time.Second, `document.getAnimations().length === 0 && [...document.querySelectorAll('[data-pollcast]')].every((h) => !h.shadowRoot || h.shadowRoot.getAnimations().length === 0)`)
	var png []byte
	var err error
	if sel == "" {
		png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
	} else {
		png, err = chromedp.Run(ctx, chromedp.Screenshot(chromedp.JSPath(sel)))
	}
	if err != nil {
		tb.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(artifactsDir, 0o755); err != nil {
		tb.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(artifactsDir, name), png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// signIn puts the admin key where the dashboard keeps it.
func (tb *tab) signIn(appURL string) {
	tb.t.Helper()
	tb.do(chromedp.Navigate(appURL+"/dashboard"),
		chromedp.Evaluate[chromedp.Void](`sessionStorage.setItem('pollcast:key', `+js(testAdminKey)+`)`),
		chromedp.Reload())
}

// ---- JavaScript snippets about widgets ---------------------------------------

// js quotes s as a JavaScript string.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// w is the shadow root of the (first) widget of poll id.
func w(id string) string {
	return `document.querySelector('[data-pollcast=` + js(id) + `]')?.shadowRoot`
}

func hasText(id, text string) string {
	return `!!` + w(id) + `?.textContent.includes(` + js(text) + `)`
}

func votesIs(id, option string, n int) string {
	return fmt.Sprintf(`%s?.querySelector('li[data-option="%s"]')?.dataset.votes === "%d"`, w(id), option, n)
}

func optionVotes(results map[string]any, option string) int {
	for _, o := range results["options"].([]any) {
		if m := o.(map[string]any); m["id"] == option {
			return int(m["votes"].(float64))
		}
	}
	return -1
}

// ---- the host site: pages of another origin ------------------------------

type hostSite struct {
	srv   *httptest.Server
	mu    sync.Mutex
	pages map[string]string
}

func startHost(t *testing.T) *hostSite {
	h := &hostSite{pages: map[string]string{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		body, ok := h.pages[r.URL.Path]
		h.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hostSite) origin() string { return h.srv.URL }

// page serves html at path and returns its URL.
func (h *hostSite) page(path, html string) string {
	h.mu.Lock()
	h.pages[path] = html
	h.mu.Unlock()
	return h.srv.URL + path
}

// ---- the assets over plain HTTP ----------------------------------------------

// TestWebAssets checks how the widget, the pages and their files are served:
// content-hashed URLs cached for a year, /embed.js cached briefly, ETags
// answered with 304, gzip, size limits, the hosted page's tags and QR code.
func TestWebAssets(t *testing.T) {
	a := startApp(t)
	get := func(path string, headers ...string) reply {
		t.Helper()
		return a.do("GET", path, nil, headers...)
	}

	ej := get("/embed.js", "Accept-Encoding", "identity")
	if ej.Status != http.StatusOK || !strings.HasPrefix(ej.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("/embed.js: %d %s", ej.Status, ej.Header.Get("Content-Type"))
	}
	if cc := ej.Header.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("/embed.js Cache-Control = %q, want a short cache", cc)
	}
	if n := len(ej.Body); n > 20_000 {
		t.Errorf("embed.js is %d bytes; the budget is 20 KB (20,000 bytes)", n)
	}
	for _, banned := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
		if bytes.Contains(ej.Body, []byte(banned)) {
			t.Errorf("embed.js uses %s", banned)
		}
	}
	etag := ej.Header.Get("ETag")
	if r := get("/embed.js", "Accept-Encoding", "identity", "If-None-Match", etag); r.Status != http.StatusNotModified || len(r.Body) != 0 {
		t.Errorf("If-None-Match %s: %d, want 304", etag, r.Status)
	}
	gz := get("/embed.js", "Accept-Encoding", "gzip")
	if gz.Header.Get("Content-Encoding") != "gzip" || gz.Header.Get("ETag") == etag {
		t.Errorf("gzip: Content-Encoding %q, ETag %q (plain %q)", gz.Header.Get("Content-Encoding"), gz.Header.Get("ETag"), etag)
	} else if zr, err := gzip.NewReader(bytes.NewReader(gz.Body)); err != nil {
		t.Error(err)
	} else if plain, _ := io.ReadAll(zr); !bytes.Equal(plain, ej.Body) {
		t.Error("gzipped embed.js differs from the plain one")
	}
	if r := a.do("HEAD", "/embed.js", nil); r.Status != http.StatusOK || len(r.Body) != 0 {
		t.Errorf("HEAD /embed.js: %d with %d bytes", r.Status, len(r.Body))
	}

	dash := get("/dashboard")
	if dash.Status != http.StatusOK || !strings.HasPrefix(dash.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("/dashboard: %d", dash.Status)
	}
	if csp := dash.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("dashboard CSP = %q", csp)
	}
	hashed := regexp.MustCompile(`/static/dashboard\.[0-9a-f]{12}\.js`).Find(dash.Body)
	if hashed == nil {
		t.Fatalf("no content-hashed dashboard.js in %s", dash.Body)
	}
	asset := get(string(hashed))
	if asset.Status != http.StatusOK || asset.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" || asset.Header.Get("ETag") == "" {
		t.Errorf("%s: %d Cache-Control %q ETag %q", hashed, asset.Status, asset.Header.Get("Cache-Control"), asset.Header.Get("ETag"))
	}
	if r := get(string(hashed), "If-None-Match", `W/"x", `+asset.Header.Get("ETag")); r.Status != http.StatusNotModified {
		t.Errorf("hashed asset with a matching ETag: %d", r.Status)
	}
	if r := get("/static/dashboard.000000000000.js"); r.Status != http.StatusOK || r.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("another build's hash: %d %q, want the current file, not cached", r.Status, r.Header.Get("Cache-Control"))
	}
	if r := get("/static/nothing.0123456789ab.js"); r.Status != http.StatusNotFound {
		t.Errorf("unknown asset: %d", r.Status)
	}
	if r := get("/static/page.html"); r.Status != http.StatusNotFound {
		t.Errorf("a page template is served as a file: %d", r.Status)
	}

	q := `Tabs & "spaces" <b>?</b>`
	id := a.createPoll(map[string]any{"question": q})["id"].(string)
	p := get("/p/"+id, "X-Forwarded-Proto", "https")
	body := string(p.Body)
	if p.Status != http.StatusOK || !strings.Contains(p.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("/p/%s: %d", id, p.Status)
	}
	esc := `Tabs &amp; &#34;spaces&#34; &lt;b&gt;?&lt;/b&gt;`
	for _, want := range []string{
		`<title>` + esc + ` · pollcast</title>`,
		`<meta property="og:title" content="` + esc + `">`,
		`<meta name="twitter:title" content="` + esc + `">`,
		`<meta property="og:url" content="` + a.url + `/p/` + id + `">`, // X-Forwarded-Proto from an untrusted peer is ignored
		`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 `,
		`data-poll="` + id + `"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("hosted page lacks %s", want)
		}
	}
	if strings.Contains(body, "<b>") {
		t.Error("hosted page has the question's HTML unescaped")
	}
	if r := get("/p/nosuchpoll12"); r.Status != http.StatusNotFound || !strings.Contains(string(r.Body), "Poll not found") {
		t.Errorf("/p/ of a missing poll: %d", r.Status)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(a.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/dashboard" {
		t.Errorf("GET /: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}
