package poll_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollcast/pollcast/internal/testsvc"
	"github.com/pollcast/pollcast/poll"
	"github.com/pollcast/pollcast/votelog"
)

// openJS starts an in-process NATS server on dir.
func openJS(t testing.TB, dir string) (*votelog.Embedded, jetstream.JetStream) {
	t.Helper()
	l := testsvc.StartLogIn(t, dir)
	return l.Emb, l.JS
}

func openCatalog(t testing.TB, js jetstream.JetStream) *poll.Catalog {
	t.Helper()
	c, err := poll.OpenCatalog(context.Background(), js, poll.CatalogConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func newPoll(t testing.TB, owner string, created time.Time) *poll.Poll {
	t.Helper()
	p, err := poll.New(poll.CreateInput{Question: "Q", Options: []poll.OptionInput{{Label: "A"}, {Label: "B"}}}, owner, created)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testsvc.Eventually(t, 5*time.Second, what, cond)
}

func TestCatalogSharedBetweenNodes(t *testing.T) {
	ctx := context.Background()
	_, js := openJS(t, t.TempDir())
	a, b := openCatalog(t, js), openCatalog(t, js)
	if string(a.Secret()) != string(b.Secret()) || len(a.Secret()) == 0 {
		t.Fatal("nodes disagree on the server secret")
	}
	changed := make(chan *poll.Poll, 10)
	b.OnChange(func(p *poll.Poll) { changed <- p })

	p := newPoll(t, "k1", time.Now())
	if err := a.CreatePoll(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Poll(p.ID); !ok {
		t.Fatal("writer does not read its own write")
	}
	waitFor(t, "poll on node b", func() bool { _, ok := b.Poll(p.ID); return ok })

	closed, err := a.UpdatePoll(ctx, p.ID, func(p *poll.Poll) (*poll.Poll, error) {
		p.ClosedByHand = true
		return p, nil
	})
	if err != nil || !closed.ClosedByHand {
		t.Fatalf("UpdatePoll = %v, %v", closed, err)
	}
	waitFor(t, "close seen on node b", func() bool { q, _ := b.Poll(p.ID); return q != nil && q.ClosedByHand })
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("no change notification")
	}

	wantErr := errors.New("abort")
	if _, err := a.UpdatePoll(ctx, p.ID, func(*poll.Poll) (*poll.Poll, error) { return nil, wantErr }); !errors.Is(err, wantErr) {
		t.Fatalf("aborted update = %v", err)
	}
	if _, err := a.UpdatePoll(ctx, "nope", func(p *poll.Poll) (*poll.Poll, error) { return p, nil }); !errors.Is(err, poll.ErrNotFound) {
		t.Fatalf("update of unknown poll = %v", err)
	}
	_, err = a.UpdatePoll(ctx, p.ID, func(p *poll.Poll) (*poll.Poll, error) {
		now := time.Now()
		p.DeletedAt = &now
		return p, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delete seen on node b", func() bool { return b.Deleted(p.ID) })
	if _, ok := b.Poll(p.ID); ok {
		t.Fatal("deleted poll still served")
	}
	if _, err := a.UpdatePoll(ctx, p.ID, func(p *poll.Poll) (*poll.Poll, error) { return p, nil }); !errors.Is(err, poll.ErrNotFound) {
		t.Fatalf("update of deleted poll = %v", err)
	}
}

func TestCatalogConcurrentUpdatesAllApply(t *testing.T) {
	ctx := context.Background()
	_, js := openJS(t, t.TempDir())
	a, b := openCatalog(t, js), openCatalog(t, js)
	p := newPoll(t, "k", time.Now())
	if err := a.CreatePoll(ctx, p); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "poll on b", func() bool { _, ok := b.Poll(p.ID); return ok })
	errs := make(chan error, 2)
	for _, c := range []*poll.Catalog{a, b} {
		go func() {
			for range 5 {
				_, err := c.UpdatePoll(ctx, p.ID, func(p *poll.Poll) (*poll.Poll, error) {
					p.Question += "!"
					return p, nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "all ten updates", func() bool { q, _ := a.Poll(p.ID); return q.Question == "Q!!!!!!!!!!" })
}

func TestCatalogListPagesAndFilters(t *testing.T) {
	ctx := context.Background()
	_, js := openJS(t, t.TempDir())
	c := openCatalog(t, js)
	base := time.Now().Add(-time.Hour)
	var ids []string
	for i := range 7 {
		owner := "k1"
		if i%2 == 1 {
			owner = "k2"
		}
		p := newPoll(t, owner, base.Add(time.Duration(i)*time.Minute))
		if err := c.CreatePoll(ctx, p); err != nil {
			t.Fatal(err)
		}
		ids = append([]string{p.ID}, ids...) // newest first
	}
	var got []string
	after := ""
	for {
		page, more := c.List(poll.ListFilter{Limit: 3, After: after}, time.Now())
		for _, p := range page {
			got = append(got, p.ID)
		}
		if !more {
			break
		}
		after = page[len(page)-1].ID
	}
	if len(got) != len(ids) {
		t.Fatalf("paged %d polls, want %d", len(got), len(ids))
	}
	for i := range ids {
		if got[i] != ids[i] {
			t.Fatalf("order at %d: %v vs %v", i, got, ids)
		}
	}
	mine, _ := c.List(poll.ListFilter{Owner: "k2"}, time.Now())
	if len(mine) != 3 {
		t.Fatalf("owner filter: %d polls", len(mine))
	}
	closed, _ := c.List(poll.ListFilter{Status: poll.StatusClosed}, time.Now())
	if len(closed) != 0 {
		t.Fatalf("status filter: %d closed", len(closed))
	}
}

func TestCatalogKeysAndRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	emb, js := openJS(t, dir)
	c, err := poll.OpenCatalog(ctx, js, poll.CatalogConfig{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := c.CreateKey(ctx, "ci", poll.RoleOwner, "secret-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := c.KeyByHash(poll.HashKey("secret-1")); !ok || got.ID != k.ID {
		t.Fatal("key not found by hash")
	}
	if _, err := c.CreateKey(ctx, "x", "root", "s", time.Now()); !errors.Is(err, poll.ErrInvalid) {
		t.Fatalf("bad role = %v", err)
	}
	p := newPoll(t, k.ID, time.Now())
	if err := c.CreatePoll(ctx, p); err != nil {
		t.Fatal(err)
	}
	secret := string(c.Secret())
	c.Close()
	emb.Shutdown()

	// A restart on the same directory keeps everything.
	_, js2 := openJS(t, dir)
	c2 := openCatalog(t, js2)
	if string(c2.Secret()) != secret {
		t.Fatal("secret changed across restart")
	}
	if _, ok := c2.Poll(p.ID); !ok {
		t.Fatal("poll lost across restart")
	}
	if _, ok := c2.KeyByHash(poll.HashKey("secret-1")); !ok {
		t.Fatal("key lost across restart")
	}
	if err := c2.DeleteKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := c2.KeyByHash(poll.HashKey("secret-1")); ok {
		t.Fatal("deleted key still accepted")
	}
	if err := c2.DeleteKey(ctx, k.ID); !errors.Is(err, poll.ErrNotFound) {
		t.Fatalf("second delete = %v", err)
	}
}

// TestCatalogFetchReadsThrough: a poll created on one node is found on
// another at once, before that node's watch delivers it.
func TestCatalogFetchReadsThrough(t *testing.T) {
	ctx := context.Background()
	_, js := openJS(t, t.TempDir())
	a, b := openCatalog(t, js), openCatalog(t, js)
	for i := range 50 {
		p := newPoll(t, "k", time.Now())
		if err := a.CreatePoll(ctx, p); err != nil {
			t.Fatal(err)
		}
		if got, ok := b.Fetch(ctx, p.ID); !ok || got.ID != p.ID {
			t.Fatalf("poll %d not found on the other node right after its creation", i)
		}
	}
	if _, ok := b.Fetch(ctx, "no-such-poll"); ok {
		t.Fatal("found a poll that does not exist")
	}
	if _, ok := b.Fetch(ctx, "bad.*subject"); ok {
		t.Fatal("found a poll under a wildcard")
	}
}
