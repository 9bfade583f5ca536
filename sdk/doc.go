// Package sdk is the Go client of the pollcast API (API.md): polls, votes,
// results, live results, API keys, analytics and the CSV export.
//
// A Client talks to one server:
//
//	client, err := sdk.New("https://polls.example.com", sdk.Config{APIKey: os.Getenv("POLLCAST_API_KEY")})
//	p, err := client.CreatePoll(ctx, sdk.CreatePollParams{
//		Question: "Best pizza topping?",
//		Options:  []string{"Mushroom", "Pineapple"},
//	})
//	receipt, err := client.Vote(ctx, p.ID, sdk.Vote{Options: []string{"a"}, Voter: deviceID})
//	events, err := client.Live(ctx, p.ID) // results as they change, until ctx ends
//
// # Errors
//
// When the server refuses a request, methods return an *Error carrying the
// HTTP status and the stable code of API.md (Code), the server's Detail and
// its Retry-After. Use errors.As, the sentinels with errors.Is, or IsCode:
//
//	if errors.Is(err, sdk.ErrAlreadyVoted) { ... }
//	if sdk.IsCode(err, sdk.CodePollClosed) { ... }
//
// Other errors come from the network or the context.
//
// # Retries and exactly-once votes
//
// Vote and VoteBatch give every vote an idempotency key (unless the caller
// set one) and resend it, with the same key, after transient failures: 429
// and 503 once the server's Retry-After has passed, 502, 504 and network
// errors after an exponential backoff with jitter. The server counts a key
// once, so a vote whose answer was lost on the way is not counted twice.
// Retries stop after Config.MaxAttempts requests or when ctx ends. A
// Receipt means the vote is in the server's durable log and will be
// counted exactly once. Other methods are not retried.
//
// # Live results
//
// Live follows a poll over its WebSocket and delivers results as they
// change. It reconnects by itself, with backoff and jitter, until its
// context ends, and keeps only the newest state for a slow consumer, as the
// server does.
//
// The package depends on the standard library and github.com/coder/websocket
// only.
package sdk
