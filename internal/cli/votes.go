package cli

import (
	"context"
	"fmt"

	"github.com/pollcast/pollcast/sdk"
)

// voteCmd runs `pollcast vote ID OPTION...`. The SDK retries with the same
// idempotency key, so an accepted vote is counted once.
func voteCmd(ctx context.Context, c *command, args []string) error {
	voter := c.fs.String("voter", "", "the voter: a device id (device polls) or a voter token (token polls)")
	key := c.fs.String("idempotency-key", "", "the vote's idempotency key (default: a new random one)")
	pos, err := c.parse(args, "ID OPTION... [--voter V]", 2, -1)
	if err != nil {
		return err
	}
	rc, err := c.client.Vote(ctx, pos[0], sdk.Vote{Options: pos[1:], Voter: *voter, IdempotencyKey: *key})
	if err != nil {
		return err
	}
	if *c.json {
		return c.printJSON(map[string]any{"vote_id": rc.VoteID, "poll_id": rc.PollID, "status": rc.Status,
			"idempotency_key": rc.IdempotencyKey, "attempts": rc.Attempts})
	}
	fmt.Fprintf(c.stdout, "vote %s accepted: stored, and counted once\n", rc.VoteID)
	return nil
}
