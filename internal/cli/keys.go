package cli

import (
	"context"
	"fmt"

	"github.com/pollcast/pollcast/sdk"
)

// keysCreate runs `pollcast keys create`. The secret is printed once: the
// server keeps only its hash.
func keysCreate(ctx context.Context, c *command, args []string) error {
	name := c.fs.String("name", "", "a name to recognise the key by")
	role := c.fs.String("role", "owner", "owner (manages its own polls) or admin (everything)")
	if _, err := c.parse(args, "--name N [--role owner|admin]", 0, 0); err != nil {
		return err
	}
	k, err := c.client.CreateKey(ctx, *name, sdk.Role(*role))
	if err != nil {
		return err
	}
	if *c.json {
		return c.printJSON(k)
	}
	w := c.table()
	fmt.Fprintf(w, "ID\t%s\nName\t%s\nRole\t%s\nCreated\t%s\nKey\t%s\n", k.ID, clean(k.Name), k.Role, fmtTime(&k.CreatedAt), k.Key)
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(c.stderr, "The key is shown this once: store it now.")
	return nil
}

// keysList runs `pollcast keys list`.
func keysList(ctx context.Context, c *command, args []string) error {
	if _, err := c.parse(args, "", 0, 0); err != nil {
		return err
	}
	keys, err := c.client.ListKeys(ctx)
	if err != nil {
		return err
	}
	if *c.json {
		if keys == nil {
			keys = []sdk.APIKey{}
		}
		return c.printJSON(map[string]any{"keys": keys})
	}
	w := c.table()
	fmt.Fprintln(w, "ID\tROLE\tCREATED\tNAME")
	for _, k := range keys {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", k.ID, k.Role, fmtTime(&k.CreatedAt), clean(k.Name))
	}
	return w.Flush()
}

// keysDelete runs `pollcast keys delete ID`.
func keysDelete(ctx context.Context, c *command, args []string) error {
	return c.deleteOne(ctx, args, "key", (*sdk.Client).DeleteKey)
}
