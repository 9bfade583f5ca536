package web

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/pollcast/pollcast/analytics"
	"github.com/pollcast/pollcast/poll"
)

// purgePoll answers DELETE /v1/polls/{id}?purge=true: the poll is deleted
// in the catalog, if it is not yet, then erased everywhere (purge), and the
// answer comes once all of it is done. Every step is idempotent, so a purge
// that failed part way (5xx) is asked again, and a poll deleted or purged
// before is purged again without harm.
func (s *server) purgePoll(c *gin.Context) {
	ctx := c.Request.Context()
	id := c.Param("id")
	p, ok := s.Catalog.Fetch(ctx, id) // reads the bucket when this node has not seen the poll
	if !ok {
		p, ok = s.Catalog.PollOrDeleted(id)
	}
	if !ok {
		s.fail(c, poll.Errorf(poll.ErrNotFound, "no poll %q", id))
		return
	}
	k := keyOf(c)
	if !owns(k, p) {
		s.fail(c, poll.Errorf(poll.ErrForbidden, "this key does not own poll %q", p.ID))
		return
	}
	if p.DeletedAt == nil {
		_, err := s.Catalog.UpdatePoll(ctx, id, func(p *poll.Poll) (*poll.Poll, error) {
			now := time.Now()
			p.DeletedAt, p.UpdatedAt = &now, now
			return p, nil
		})
		if err != nil && !errors.Is(err, poll.ErrNotFound) { // not found: deleted meanwhile
			s.fail(c, err)
			return
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PurgeTimeout)
	defer cancel()
	if err := s.purge(ctx, id); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// purge erases a poll the catalog marks deleted, so that no vote of it is
// admitted or counted any more:
//
//  1. its counters and voter set in the tally store, which never counts
//     its votes again;
//  2. a purge mark in the log, and a wait until the analytics store has
//     passed it: the sink then holds no row of the poll on its way, which
//     would come back after the rows are deleted;
//  3. its voters in ingest's registry, then its votes in the log (the
//     votes name the voters, so they go last);
//  4. its rows in the analytics store.
//
// The log goes before the rows: a sink starting over from the store's
// largest sequence, lower once the rows are gone, finds none of the
// poll's votes to store again.
func (s *server) purge(ctx context.Context, id string) error {
	if err := s.Store.DeletePoll(ctx, id); err != nil {
		return err
	}
	mark, err := s.Ingest.PurgeMark(ctx, id)
	if err != nil {
		return err
	}
	if err := analytics.WaitPassed(ctx, s.Analytics, mark); err != nil {
		if ctx.Err() == nil {
			return err
		}
		s.log.Warn("purge: the analytics store did not catch up with the log in time", "poll", id, "err", err)
		return &poll.Error{Code: poll.CodeOverloaded, RetryAfter: 5 * time.Second,
			Detail: "the analytics store is behind the vote log; nothing is lost, purge again later"}
	}
	if err := s.Ingest.PurgeLog(ctx, id); err != nil {
		return err
	}
	return s.Analytics.DeletePoll(ctx, id)
}
