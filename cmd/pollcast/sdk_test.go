package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pollcast/pollcast/sdk"
)

// Tests of package sdk against a real in-process server.

// sdkClient returns an SDK client of a; key may be empty.
func sdkClient(t testing.TB, a *app, key string, cfg ...sdk.Config) *sdk.Client {
	t.Helper()
	var c sdk.Config
	if len(cfg) > 0 {
		c = cfg[0]
	}
	c.APIKey = key
	client, err := sdk.New(a.url, c)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// wantAPIError checks that err is an *sdk.Error with the status and code,
// that errors.Is matches the sentinel, and that sdk.IsCode agrees.
func wantAPIError(t testing.TB, what string, err error, status int, code sdk.Code) *sdk.Error {
	t.Helper()
	var e *sdk.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: err %v (%T), want *sdk.Error %d %s", what, err, err, status, code)
	}
	if e.Status != status || e.Code != code {
		t.Fatalf("%s: %d %s (%v), want %d %s", what, e.Status, e.Code, err, status, code)
	}
	if !errors.Is(err, &sdk.Error{Code: code}) || !sdk.IsCode(err, code) || sdk.ErrorCode(err) != code {
		t.Fatalf("%s: errors.Is / IsCode / ErrorCode do not see %s in %v", what, code, err)
	}
	return e
}

func waitTotal(t testing.TB, c *sdk.Client, pollID string, want int64) {
	t.Helper()
	ctx := testCtx(t, 10*time.Second)
	eventually(t, 5*time.Second, fmt.Sprintf("poll %s counts %d votes", pollID, want), func() bool {
		r, err := c.Results(ctx, pollID)
		return err == nil && r.Total == want
	})
}

func TestSDKPolls(t *testing.T) {
	a := startApp(t)
	ctx := testCtx(t, 30*time.Second)
	admin := sdkClient(t, a, testAdminKey)
	public := sdkClient(t, a, "")

	closes := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	p, err := admin.CreatePoll(ctx, sdk.CreatePollParams{
		Question: "Best pizza topping?", Options: []string{"Mushroom", "Pineapple", "Olives"},
		Kind: sdk.KindMultiple, MaxChoices: 2, Dedupe: sdk.DedupeNone, ResultsVisibility: sdk.VisibleAfterClose,
		ClosesAt: &closes, AllowedOrigins: []string{"https://news.example.com"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.ID) < 10 || p.Kind != sdk.KindMultiple || p.MaxChoices != 2 || p.Dedupe != sdk.DedupeNone ||
		p.ResultsVisibility != sdk.VisibleAfterClose || p.Status != sdk.StatusOpen || p.ClosesAt == nil || !p.ClosesAt.Equal(closes) ||
		len(p.Options) != 3 || p.Options[1] != (sdk.Option{ID: "b", Label: "Pineapple"}) || p.Label("c") != "Olives" ||
		p.VoterSecret == "" || len(p.AllowedOrigins) != 1 || p.CreatedAt.IsZero() {
		t.Fatalf("created %+v", p)
	}

	// Owner-only fields only with the owner's key.
	got, err := public.GetPoll(ctx, p.ID)
	if err != nil || got.VoterSecret != "" || got.AllowedOrigins != nil || got.Question != p.Question {
		t.Fatalf("public get: %+v %v", got, err)
	}
	if got, err = admin.GetPoll(ctx, p.ID); err != nil || got.VoterSecret != p.VoterSecret {
		t.Fatalf("owner get: %+v %v", got, err)
	}

	// PATCH: question, a relabel and a new option, clear the closing time and the origins.
	q := "Best topping?"
	up, err := admin.UpdatePoll(ctx, p.ID, sdk.UpdatePollParams{
		Question: &q, ClearClosesAt: true, AllowedOrigins: &[]string{},
		Options: []sdk.Option{{ID: "a", Label: "Mushrooms"}, {ID: "b", Label: "Pineapple"}, {ID: "c", Label: "Olives"}, {Label: "Ham"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if up.Question != q || up.ClosesAt != nil || len(up.AllowedOrigins) != 0 || up.Label("a") != "Mushrooms" || up.Label("d") != "Ham" {
		t.Fatalf("updated %+v", up)
	}

	// Close and open.
	if cp, err := admin.ClosePoll(ctx, p.ID); err != nil || cp.Status != sdk.StatusClosed {
		t.Fatalf("close: %+v %v", cp, err)
	}
	if op, err := admin.OpenPoll(ctx, p.ID); err != nil || op.Status != sdk.StatusOpen {
		t.Fatalf("open: %+v %v", op, err)
	}

	// Paging: 6 polls in pages of 4, newest first, then every page at once.
	ids := []string{p.ID}
	for i := range 5 {
		np, err := admin.CreatePoll(ctx, sdk.CreatePollParams{Question: fmt.Sprintf("Q%d", i), Options: []string{"x", "y"}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, np.ID)
	}
	page, err := admin.ListPolls(ctx, sdk.ListPollsParams{Limit: 4})
	if err != nil || len(page.Polls) != 4 || page.NextCursor == "" || page.Polls[0].ID != ids[5] {
		t.Fatalf("page 1: %+v %v", page, err)
	}
	page2, err := admin.ListPolls(ctx, sdk.ListPollsParams{Limit: 4, Cursor: page.NextCursor})
	if err != nil || len(page2.Polls) != 2 || page2.NextCursor != "" || page2.Polls[1].ID != ids[0] {
		t.Fatalf("page 2: %+v %v", page2, err)
	}
	var all []string
	for p, err := range admin.AllPolls(ctx, sdk.ListPollsParams{Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p.ID)
	}
	if len(all) != 6 || all[0] != ids[5] || all[5] != ids[0] {
		t.Fatalf("AllPolls: %v, want %v reversed", all, ids)
	}
	if _, err := admin.ClosePoll(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	closed, err := admin.ListPolls(ctx, sdk.ListPollsParams{Status: sdk.StatusClosed})
	if err != nil || len(closed.Polls) != 1 || closed.Polls[0].ID != ids[1] {
		t.Fatalf("closed polls: %+v %v", closed, err)
	}

	// Delete.
	if err := admin.DeletePoll(ctx, ids[2]); err != nil {
		t.Fatal(err)
	}
	_, err = public.GetPoll(ctx, ids[2])
	if e := wantAPIError(t, "get deleted", err, http.StatusNotFound, sdk.CodeNotFound); !errors.Is(err, sdk.ErrNotFound) || e.Detail == "" {
		t.Fatalf("deleted poll: %v", err)
	}

	// Typed errors.
	_, err = admin.CreatePoll(ctx, sdk.CreatePollParams{Question: "One option?", Options: []string{"only"}})
	if e := wantAPIError(t, "one option", err, http.StatusUnprocessableEntity, sdk.CodeInvalid); !strings.Contains(e.Detail, "options") {
		t.Fatalf("invalid detail %q does not name the field", e.Detail)
	}
	_, err = admin.CreatePoll(ctx, sdk.CreatePollParams{Question: strings.Repeat("?", 70<<10), Options: []string{"a", "b"}})
	wantAPIError(t, "70 KiB question", err, http.StatusRequestEntityTooLarge, sdk.CodeBodyTooLarge)
	_, err = public.CreatePoll(ctx, sdk.CreatePollParams{Question: "No key?", Options: []string{"a", "b"}})
	wantAPIError(t, "create without key", err, http.StatusUnauthorized, sdk.CodeUnauthorized)
	_, err = sdkClient(t, a, "wrong-key").ListPolls(ctx, sdk.ListPollsParams{})
	wantAPIError(t, "list with a wrong key", err, http.StatusUnauthorized, sdk.CodeUnauthorized)
	_, err = admin.ListPolls(ctx, sdk.ListPollsParams{Limit: 500})
	wantAPIError(t, "limit 500", err, http.StatusUnprocessableEntity, sdk.CodeInvalid)

	// has_votes: options cannot be removed once votes exist.
	if _, err := public.Vote(ctx, p.ID, sdk.Vote{Options: []string{"a", "d"}}); err != nil {
		t.Fatal(err)
	}
	waitTotal(t, admin, p.ID, 1)
	_, err = admin.UpdatePoll(ctx, p.ID, sdk.UpdatePollParams{Options: []sdk.Option{{ID: "a", Label: "A"}, {ID: "b", Label: "B"}}})
	wantAPIError(t, "remove options after votes", err, http.StatusConflict, sdk.CodeHasVotes)
}

func TestSDKVoteAndResults(t *testing.T) {
	a := startApp(t)
	ctx := testCtx(t, 30*time.Second)
	admin := sdkClient(t, a, testAdminKey)
	public := sdkClient(t, a, "")
	p, err := admin.CreatePoll(ctx, sdk.CreatePollParams{Question: "Q?", Options: []string{"A", "B"}})
	if err != nil {
		t.Fatal(err)
	}

	rc, err := public.Vote(ctx, p.ID, sdk.Vote{Options: []string{"a"}, Voter: "device-1", Referrer: "https://news.example.com/story"})
	if err != nil {
		t.Fatal(err)
	}
	if rc.VoteID == "" || rc.PollID != p.ID || rc.Status != "accepted" || rc.Attempts != 1 || len(rc.IdempotencyKey) != 32 {
		t.Fatalf("receipt %+v", rc)
	}
	_, err = public.Vote(ctx, p.ID, sdk.Vote{Options: []string{"b"}, Voter: "device-1"})
	wantAPIError(t, "second vote of a device", err, http.StatusConflict, sdk.CodeAlreadyVoted)
	if !errors.Is(err, sdk.ErrAlreadyVoted) || errors.Is(err, sdk.ErrPollClosed) {
		t.Fatalf("sentinels: %v", err)
	}
	_, err = public.Vote(ctx, p.ID, sdk.Vote{Options: []string{"z"}, Voter: "device-2"})
	wantAPIError(t, "unknown option", err, http.StatusUnprocessableEntity, sdk.CodeInvalidOption)
	_, err = public.Vote(ctx, p.ID, sdk.Vote{Options: []string{"a", "b"}, Voter: "device-2"})
	wantAPIError(t, "two options on a single poll", err, http.StatusUnprocessableEntity, sdk.CodeInvalidOption)
	_, err = public.Vote(ctx, "no-such-poll-id", sdk.Vote{Options: []string{"a"}})
	wantAPIError(t, "unknown poll", err, http.StatusNotFound, sdk.CodeNotFound)

	// The same idempotency key twice: one vote, the same vote id.
	key := sdk.NewIdempotencyKey()
	r1, err := public.Vote(ctx, p.ID, sdk.Vote{Options: []string{"b"}, Voter: "device-3", IdempotencyKey: key})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := public.Vote(ctx, p.ID, sdk.Vote{Options: []string{"b"}, Voter: "device-3", IdempotencyKey: key})
	if err != nil || r2.VoteID != r1.VoteID || r2.IdempotencyKey != key {
		t.Fatalf("retry with the same key: %+v %v, first %+v", r2, err, r1)
	}
	waitTotal(t, public, p.ID, 2)
	res, err := public.Results(ctx, p.ID)
	if err != nil || res.PollID != p.ID || res.Voters != 2 || res.Votes("a") != 1 || res.Votes("b") != 1 ||
		res.Status != sdk.StatusOpen || res.Version == 0 || len(res.Options) != 2 {
		t.Fatalf("results %+v %v", res, err)
	}

	// poll_closed.
	if _, err := admin.ClosePoll(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	_, err = public.Vote(ctx, p.ID, sdk.Vote{Options: []string{"a"}, Voter: "device-4"})
	wantAPIError(t, "vote on a closed poll", err, http.StatusConflict, sdk.CodePollClosed)

	// invalid_voter_token.
	tp, err := admin.CreatePoll(ctx, sdk.CreatePollParams{Question: "Token?", Options: []string{"A", "B"}, Dedupe: sdk.DedupeToken})
	if err != nil {
		t.Fatal(err)
	}
	_, err = public.Vote(ctx, tp.ID, sdk.Vote{Options: []string{"a"}, Voter: "not-a-jwt"})
	wantAPIError(t, "bad voter token", err, http.StatusUnauthorized, sdk.CodeInvalidVoterToken)

	// results_hidden, per viewer.
	hp, err := admin.CreatePoll(ctx, sdk.CreatePollParams{Question: "Hidden?", Options: []string{"A", "B"}, ResultsVisibility: sdk.VisibleAfterVote})
	if err != nil {
		t.Fatal(err)
	}
	_, err = public.Results(ctx, hp.ID)
	wantAPIError(t, "after_vote results before voting", err, http.StatusForbidden, sdk.CodeResultsHidden)
	if _, err := public.Vote(ctx, hp.ID, sdk.Vote{Options: []string{"b"}, Voter: "device-9"}); err != nil {
		t.Fatal(err)
	}
	if r, err := public.VoterResults(ctx, hp.ID, "device-9"); err != nil || r.PollID != hp.ID {
		t.Fatalf("results of a voter who voted: %+v %v", r, err)
	}
	_, err = public.VoterResults(ctx, hp.ID, "device-10")
	wantAPIError(t, "results of another voter", err, http.StatusForbidden, sdk.CodeResultsHidden)
	if _, err := admin.Results(ctx, hp.ID); err != nil {
		t.Fatalf("the owner always sees results: %v", err)
	}
}

// TestSDKVoteWaitsOutRateLimit: a 429 is retried after its Retry-After with
// the same key and succeeds; the vote is counted once.
func TestSDKVoteWaitsOutRateLimit(t *testing.T) {
	a := startApp(t, func(c *Config) { c.VoteRate = 1 }) // bursts of 4
	ctx := testCtx(t, 30*time.Second)
	admin := sdkClient(t, a, testAdminKey)
	p := openPoll(ctx, t, admin)
	once := sdkClient(t, a, "", sdk.Config{MaxAttempts: 1})
	accepted := 0
	var limited error
	for range 10 {
		if _, limited = once.Vote(ctx, p.ID, sdk.Vote{Options: []string{"a"}}); limited != nil {
			break
		}
		accepted++
	}
	e := wantAPIError(t, "vote over the burst, no retries", limited, http.StatusTooManyRequests, sdk.CodeRateLimited)
	if e.RetryAfter < time.Second || !e.Temporary() {
		t.Fatalf("rate limited error %+v: want Retry-After ≥ 1s", e)
	}

	// A deadline sooner than Retry-After: the error comes back at once.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	start := time.Now()
	_, err := sdkClient(t, a, "").Vote(short, p.ID, sdk.Vote{Options: []string{"a"}})
	cancel()
	wantAPIError(t, "vote with a short deadline", err, http.StatusTooManyRequests, sdk.CodeRateLimited)
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Fatalf("waited %v for a Retry-After past the deadline", d)
	}

	// The default client waits and succeeds.
	start = time.Now()
	rc, err := sdkClient(t, a, "").Vote(ctx, p.ID, sdk.Vote{Options: []string{"b"}})
	if err != nil {
		t.Fatalf("vote through the rate limit: %v", err)
	}
	if rc.Attempts < 2 || time.Since(start) < 500*time.Millisecond {
		t.Fatalf("accepted after %d attempts in %v: it did not wait for Retry-After", rc.Attempts, time.Since(start))
	}
	waitTotal(t, admin, p.ID, int64(accepted+1))
	if r, err := admin.Results(ctx, p.ID); err != nil || r.Votes("b") != 1 {
		t.Fatalf("results %+v %v: the retried vote is not counted once", r, err)
	}
}

// TestSDKVoteOverloaded: with the log down every attempt gets 503; Vote
// waits Retry-After between attempts and returns the typed error.
func TestSDKVoteOverloaded(t *testing.T) {
	a := startApp(t)
	ctx := testCtx(t, 30*time.Second)
	admin := sdkClient(t, a, testAdminKey)
	p := openPoll(ctx, t, admin)
	a.emb.Shutdown()
	start := time.Now()
	_, err := sdkClient(t, a, "", sdk.Config{MaxAttempts: 2}).Vote(ctx, p.ID, sdk.Vote{Options: []string{"a"}})
	e := wantAPIError(t, "vote with the log down", err, http.StatusServiceUnavailable, sdk.CodeOverloaded)
	if !errors.Is(err, sdk.ErrOverloaded) || e.RetryAfter < time.Second || !strings.Contains(err.Error(), "after 2 attempts") {
		t.Fatalf("overloaded error: %v (%+v)", err, e)
	}
	if d := time.Since(start); d < e.RetryAfter-100*time.Millisecond {
		t.Fatalf("two attempts in %v: it did not wait Retry-After %v", d, e.RetryAfter)
	}
	// A batch answers 200 with each vote's status: 503 overloaded.
	res, err := admin.VoteBatch(ctx, []sdk.BatchVote{{PollID: p.ID, Options: []string{"a"}}})
	if err != nil || res[0].Accepted() || res[0].Status != http.StatusServiceUnavailable || !errors.Is(res[0].Err(), sdk.ErrOverloaded) {
		t.Fatalf("batch with the log down: %+v %v", res, err)
	}
}

// lossyProxy forwards TCP connections to backend, except that it drops the
// answer of the first drop connections: the server acts on the request,
// the client never hears back.
type lossyProxy struct {
	ln      net.Listener
	backend string
	drop    atomic.Int32
	dropped atomic.Int32
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []net.Conn
}

func startLossyProxy(t testing.TB, backend string, drop int) *lossyProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &lossyProxy{ln: ln, backend: backend}
	p.drop.Store(int32(drop))
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.serve(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *lossyProxy) serve(c net.Conn) {
	defer c.Close()
	b, err := net.Dial("tcp", p.backend)
	if err != nil {
		return
	}
	defer b.Close()
	p.mu.Lock()
	p.conns = append(p.conns, c, b)
	p.mu.Unlock()
	p.wg.Go(func() { _, _ = io.Copy(b, c) })
	if p.drop.Add(-1) >= 0 {
		// Wait for the first byte of the answer: the request was handled.
		_, _ = b.Read(make([]byte, 1))
		p.dropped.Add(1)
		b.Close()
		return
	}
	_, _ = io.Copy(c, b)
}

// TestSDKVoteRetriesLostAnswerWithTheSameKey: the answer to a vote is lost
// on the way; the SDK retries with the same idempotency key, and the vote,
// stored by the first attempt, is counted once.
func TestSDKVoteRetriesLostAnswerWithTheSameKey(t *testing.T) {
	a := startApp(t)
	ctx := testCtx(t, 30*time.Second)
	admin := sdkClient(t, a, testAdminKey)
	p := openPoll(ctx, t, admin)
	proxy := startLossyProxy(t, strings.TrimPrefix(a.url, "http://"), 1)
	c, err := sdk.New("http://"+proxy.ln.Addr().String(), sdk.Config{MinBackoff: 10 * time.Millisecond,
		HTTPClient: &http.Client{Transport: &http.Transport{}}})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := c.Vote(ctx, p.ID, sdk.Vote{Options: []string{"a"}})
	if err != nil {
		t.Fatalf("vote through a lossy proxy: %v", err)
	}
	if rc.Attempts != 2 || proxy.dropped.Load() != 1 {
		t.Fatalf("%d attempts, %d answers dropped", rc.Attempts, proxy.dropped.Load())
	}
	waitTotal(t, admin, p.ID, 1)
	time.Sleep(200 * time.Millisecond) // a second count would show up in this time
	if r, err := admin.Results(ctx, p.ID); err != nil || r.Total != 1 {
		t.Fatalf("results %+v %v: want the vote counted once", r, err)
	}

	// Without retries the lost answer is a network error, not an *sdk.Error.
	proxy.drop.Store(1)
	once, err := sdk.New("http://"+proxy.ln.Addr().String(), sdk.Config{MaxAttempts: 1,
		HTTPClient: &http.Client{Transport: &http.Transport{}}}) // a fresh connection, not the first client's
	if err != nil {
		t.Fatal(err)
	}
	_, err = once.Vote(ctx, p.ID, sdk.Vote{Options: []string{"a"}})
	var e *sdk.Error
	if err == nil || errors.As(err, &e) || sdk.ErrorCode(err) != "" {
		t.Fatalf("lost answer without retries: %v", err)
	}
}

func TestSDKVoteBatch(t *testing.T) {
	a := startApp(t)
	ctx := testCtx(t, 30*time.Second)
	admin := sdkClient(t, a, testAdminKey)
	p, err := admin.CreatePoll(ctx, sdk.CreatePollParams{Question: "Q?", Options: []string{"A", "B"}})
	if err != nil {
		t.Fatal(err)
	}
	votes := []sdk.BatchVote{
		{PollID: p.ID, Options: []string{"a"}, Voter: "sms:1"},
		{PollID: p.ID, Options: []string{"b"}, Voter: "sms:1"},
		{PollID: p.ID, Options: []string{"x"}, Voter: "sms:2"},
		{PollID: "no-such-poll-id", Options: []string{"a"}, Voter: "sms:3"},
		{PollID: p.ID, Options: []string{"b"}, Voter: "sms:4", IdempotencyKey: "my-key-4"},
	}
	res, err := admin.VoteBatch(ctx, votes)
	if err != nil {
		t.Fatal(err)
	}
	want := []sdk.Code{"", sdk.CodeAlreadyVoted, sdk.CodeInvalidOption, sdk.CodeNotFound, ""}
	for i, r := range res {
		if want[i] == "" {
			if !r.Accepted() || r.VoteID == "" || r.Err() != nil {
				t.Errorf("vote %d: %+v", i, r)
			}
			continue
		}
		if r.Accepted() || r.Code != want[i] || !sdk.IsCode(r.Err(), want[i]) {
			t.Errorf("vote %d: %+v, want %s", i, r, want[i])
		}
	}
	if res[4].IdempotencyKey != "my-key-4" || len(res[0].IdempotencyKey) != 32 {
		t.Fatalf("idempotency keys %q %q", res[0].IdempotencyKey, res[4].IdempotencyKey)
	}
	waitTotal(t, admin, p.ID, 2)

	// Sending the batch again with the keys it got: nothing new is counted.
	for i := range votes {
		votes[i].IdempotencyKey = res[i].IdempotencyKey
	}
	again, err := admin.VoteBatch(ctx, votes)
	if err != nil || again[0].VoteID != res[0].VoteID || again[4].VoteID != res[4].VoteID {
		t.Fatalf("batch again: %+v %v", again, err)
	}
	time.Sleep(200 * time.Millisecond)
	waitTotal(t, admin, p.ID, 2)

	_, err = sdkClient(t, a, "").VoteBatch(ctx, votes[:1])
	wantAPIError(t, "batch without a key", err, http.StatusUnauthorized, sdk.CodeUnauthorized)
	if _, err := admin.VoteBatch(ctx, nil); err == nil {
		t.Fatal("an empty batch was sent")
	}
}

func TestSDKKeys(t *testing.T) {
	a := startApp(t)
	ctx := testCtx(t, 30*time.Second)
	admin := sdkClient(t, a, testAdminKey)
	k, err := admin.CreateKey(ctx, "newsroom", sdk.RoleOwner)
	if err != nil {
		t.Fatal(err)
	}
	if k.ID == "" || k.Key == "" || k.Name != "newsroom" || k.Role != sdk.RoleOwner || k.CreatedAt.IsZero() {
		t.Fatalf("created key %+v", k)
	}
	owner := sdkClient(t, a, k.Key)
	mine, err := owner.CreatePoll(ctx, sdk.CreatePollParams{Question: "Mine?", Options: []string{"A", "B"}})
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := admin.CreatePoll(ctx, sdk.CreatePollParams{Question: "Theirs?", Options: []string{"A", "B"}})
	if err != nil {
		t.Fatal(err)
	}
	page, err := owner.ListPolls(ctx, sdk.ListPollsParams{})
	if err != nil || len(page.Polls) != 1 || page.Polls[0].ID != mine.ID {
		t.Fatalf("owner's polls: %+v %v", page, err)
	}
	_, err = owner.ClosePoll(ctx, theirs.ID)
	wantAPIError(t, "close another owner's poll", err, http.StatusForbidden, sdk.CodeForbidden)
	_, err = owner.ListKeys(ctx)
	wantAPIError(t, "list keys as an owner", err, http.StatusForbidden, sdk.CodeForbidden)

	keys, err := admin.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, kk := range keys {
		found = found || kk.ID == k.ID && kk.Key == "" && kk.Name == "newsroom"
	}
	if !found || len(keys) != 2 {
		t.Fatalf("keys %+v", keys)
	}

	second, err := admin.CreateKey(ctx, "second admin", sdk.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	err = sdkClient(t, a, second.Key).DeleteKey(ctx, second.ID)
	wantAPIError(t, "a key deleting itself", err, http.StatusConflict, sdk.CodeConflict)
	if err := sdkClient(t, a, second.Key).DeleteKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	_, err = owner.ListPolls(ctx, sdk.ListPollsParams{})
	wantAPIError(t, "a revoked key", err, http.StatusUnauthorized, sdk.CodeUnauthorized)
	err = admin.DeleteKey(ctx, "no-such-key")
	wantAPIError(t, "delete an unknown key", err, http.StatusNotFound, sdk.CodeNotFound)
	_, err = admin.CreateKey(ctx, "bad role", "root")
	wantAPIError(t, "key with an unknown role", err, http.StatusUnprocessableEntity, sdk.CodeInvalid)
}

func TestSDKAnalytics(t *testing.T) {
	a := startApp(t)
	ctx := testCtx(t, 30*time.Second)
	admin := sdkClient(t, a, testAdminKey)
	p := openPoll(ctx, t, admin)
	for i := range 5 {
		if _, err := admin.Vote(ctx, p.ID, sdk.Vote{Options: []string{[]string{"a", "b"}[i%2]}, Referrer: "https://news.example.com/x"}); err != nil {
			t.Fatal(err)
		}
	}
	var tl *sdk.Timeline
	eventually(t, 10*time.Second, "timeline counts 5 votes", func() bool {
		var err error
		tl, err = admin.Timeline(ctx, p.ID, sdk.TimelineParams{Step: sdk.StepHour})
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, pt := range tl.Points {
			n += pt.Votes
		}
		return n == 5
	})
	if tl.PollID != p.ID || tl.Step != sdk.StepHour || tl.From.IsZero() || !tl.To.After(tl.From) {
		t.Fatalf("timeline %+v", tl)
	}
	by, err := admin.Breakdown(ctx, p.ID, sdk.ByRegion)
	if err != nil || by.By != sdk.ByRegion || len(by.Rows) != 1 || by.Rows[0].Key != "test" || by.Rows[0].Votes != 5 ||
		by.Rows[0].ByOption["a"] != 3 || by.Rows[0].ByOption["b"] != 2 {
		t.Fatalf("breakdown by region %+v %v", by, err)
	}
	if by, err := admin.Breakdown(ctx, p.ID, sdk.ByReferrer); err != nil || len(by.Rows) != 1 || by.Rows[0].Key != "news.example.com" {
		t.Fatalf("breakdown by referrer %+v %v", by, err)
	}
	_, err = admin.Breakdown(ctx, p.ID, "planet")
	wantAPIError(t, "breakdown by planet", err, http.StatusUnprocessableEntity, sdk.CodeInvalid)
	now := time.Now()
	_, err = admin.Timeline(ctx, p.ID, sdk.TimelineParams{From: now, To: now.Add(-time.Hour)})
	wantAPIError(t, "timeline ending before it starts", err, http.StatusUnprocessableEntity, sdk.CodeInvalid)
	_, err = sdkClient(t, a, "").Timeline(ctx, p.ID, sdk.TimelineParams{})
	wantAPIError(t, "timeline without a key", err, http.StatusUnauthorized, sdk.CodeUnauthorized)

	body, err := admin.ExportVotes(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(body).ReadAll()
	body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 6 || strings.Join(rows[0], ",") != "vote_id,time,options,region,country,device,referrer" || rows[1][3] != "test" {
		t.Fatalf("csv %v", rows)
	}
	_, err = admin.ExportVotes(ctx, "no-such-poll-id")
	wantAPIError(t, "export an unknown poll", err, http.StatusNotFound, sdk.CodeNotFound)
}

// nextEvent returns the next live event of the given type.
func nextEvent(t testing.TB, events <-chan sdk.Event, typ sdk.EventType) sdk.Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("live stream closed waiting for %s", typ)
			}
			if ev.Type == typ {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event in 10s", typ)
		}
	}
}

// resultsWith waits for results satisfying ok and returns them with the
// number of results events read.
func resultsWith(t testing.TB, events <-chan sdk.Event, ok func(*sdk.Results) bool) (*sdk.Results, int) {
	t.Helper()
	for n := 1; ; n++ {
		if ev := nextEvent(t, events, sdk.EventResults); ok(ev.Results) {
			return ev.Results, n
		}
	}
}

func TestSDKLive(t *testing.T) {
	a := startApp(t)
	ctx := testCtx(t, 30*time.Second)
	admin := sdkClient(t, a, testAdminKey)
	public := sdkClient(t, a, "")
	p := openPoll(ctx, t, admin)
	events, err := public.Live(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	first := <-events
	if first.Type != sdk.EventResults || first.Results.PollID != p.ID || first.Results.Total != 0 || len(first.Results.Options) != 2 {
		t.Fatalf("first event %+v", first)
	}
	if _, err := public.Vote(ctx, p.ID, sdk.Vote{Options: []string{"b"}}); err != nil {
		t.Fatal(err)
	}
	if r, _ := resultsWith(t, events, func(r *sdk.Results) bool { return r.Total == 1 }); r.Votes("b") != 1 || r.Version <= first.Results.Version {
		t.Fatalf("update %+v", r)
	}

	// A relabel arrives as a poll event; closing as a poll event and closed results.
	q := "Which one?"
	if _, err := admin.UpdatePoll(ctx, p.ID, sdk.UpdatePollParams{Question: &q}); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, events, sdk.EventPoll); ev.Poll.Question != q || ev.Poll.ID != p.ID || ev.Poll.VoterSecret != "" {
		t.Fatalf("poll event %+v", ev.Poll)
	}
	if _, err := admin.ClosePoll(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, events, sdk.EventPoll); ev.Poll.Status != sdk.StatusClosed {
		t.Fatalf("poll event after close %+v", ev.Poll)
	}
	resultsWith(t, events, func(r *sdk.Results) bool { return r.Status == sdk.StatusClosed && r.Total == 1 })

	// A slow consumer gets the newest results, not a backlog.
	if _, err := admin.OpenPoll(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	const n = 12
	for i := range n {
		if _, err := public.Vote(ctx, p.ID, sdk.Vote{Options: []string{"a"}}); err != nil {
			t.Fatal(err)
		}
		waitTotal(t, public, p.ID, int64(2+i)) // each vote its own update
	}
	if _, read := resultsWith(t, events, func(r *sdk.Results) bool { return r.Total == n+1 }); read > 3 {
		t.Fatalf("read %d results events to reach the newest: a backlog, not the newest state", read)
	}

	// Deleting the poll ends the stream.
	if err := admin.DeletePoll(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	end := nextEvent(t, events, sdk.EventEnd)
	wantAPIError(t, "stream of a deleted poll", end.Err, http.StatusNotFound, sdk.CodeNotFound)
	if _, ok := <-events; ok {
		t.Fatal("the stream goes on after EventEnd")
	}

	// Errors when connecting are returned at once, typed.
	_, err = public.Live(ctx, "no-such-poll-id")
	wantAPIError(t, "live on an unknown poll", err, http.StatusNotFound, sdk.CodeNotFound)
	_, err = sdkClient(t, a, "wrong-key").Live(ctx, p.ID)
	wantAPIError(t, "live with a wrong key", err, http.StatusUnauthorized, sdk.CodeUnauthorized)

	// Hidden results: hidden for the public, visible for the owner.
	hp, err := admin.CreatePoll(ctx, sdk.CreatePollParams{Question: "Secret?", Options: []string{"A", "B"}, ResultsVisibility: sdk.VisibleOwner})
	if err != nil {
		t.Fatal(err)
	}
	hidden, err := public.Live(ctx, hp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-hidden; ev.Type != sdk.EventHidden {
		t.Fatalf("first event of a hidden poll: %+v", ev)
	}
	owned, err := admin.Live(ctx, hp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-owned; ev.Type != sdk.EventResults {
		t.Fatalf("owner's first event: %+v", ev)
	}
}

// TestSDKLiveReconnects: the server goes away and comes back on the same
// address and data; Live reports the loss, reconnects by itself and
// resumes with results that include a vote cast while it was away.
func TestSDKLiveReconnects(t *testing.T) {
	cfg := Config{
		Addr: freeAddr(t), Data: t.TempDir(), Shards: 4, Region: "test",
		AdminKey: testAdminKey, ShutdownTimeout: 5 * time.Second, LogLevel: "warn", LogFormat: "text",
	}
	a := startAppWith(t, cfg)
	ctx := testCtx(t, 60*time.Second)
	admin := sdkClient(t, a, testAdminKey)
	p := openPoll(ctx, t, admin)
	live := sdkClient(t, a, "", sdk.Config{MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	events, err := live.Live(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Vote(ctx, p.ID, sdk.Vote{Options: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	resultsWith(t, events, func(r *sdk.Results) bool { return r.Total == 1 })

	for restart := 1; restart <= 2; restart++ {
		if err := a.Main.Close(); err != nil {
			t.Fatal(err)
		}
		if ev := nextEvent(t, events, sdk.EventDisconnected); ev.Err == nil {
			t.Fatal("disconnected without a reason")
		}
		a = startAppWith(t, cfg)
		if _, err := admin.Vote(ctx, p.ID, sdk.Vote{Options: []string{"b"}}); err != nil {
			t.Fatalf("vote after restart %d: %v", restart, err)
		}
		r, _ := resultsWith(t, events, func(r *sdk.Results) bool { return r.Total == int64(1+restart) })
		if r.Votes("b") != int64(restart) {
			t.Fatalf("after restart %d: %+v", restart, r)
		}
	}
}

// openPoll creates an open poll of two options, every vote counted.
func openPoll(ctx context.Context, t *testing.T, admin *sdk.Client) *sdk.Poll {
	t.Helper()
	p, err := admin.CreatePoll(ctx, sdk.CreatePollParams{Question: "Q?", Options: []string{"A", "B"}, Dedupe: sdk.DedupeNone})
	if err != nil {
		t.Fatal(err)
	}
	return p
}
