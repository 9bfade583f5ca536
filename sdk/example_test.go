package sdk_test

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/pollcast/pollcast/sdk"
)

// The examples run against a pollcast server: `make run` starts one on
// http://127.0.0.1:8080 and prints its admin key, to export as
// POLLCAST_API_KEY. Their tests start one of their own (main_test.go).

// serverURL is the server the examples talk to.
var serverURL = cmp.Or(os.Getenv("POLLCAST_URL"), "http://127.0.0.1:8080")

// newClient returns a client of serverURL with the admin key.
func newClient() *sdk.Client {
	client, err := sdk.New(serverURL, sdk.Config{APIKey: os.Getenv("POLLCAST_API_KEY")})
	if err != nil {
		log.Fatal(err)
	}
	return client
}

// newPoll creates an open poll with the given dedupe policy.
func newPoll(ctx context.Context, client *sdk.Client, dedupe sdk.Dedupe) *sdk.Poll {
	p, err := client.CreatePoll(ctx, sdk.CreatePollParams{
		Question: "Best pizza topping?", Options: []string{"Mushroom", "Pineapple"}, Dedupe: dedupe,
	})
	if err != nil {
		log.Fatal(err)
	}
	return p
}

func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := sdk.New(serverURL, sdk.Config{APIKey: os.Getenv("POLLCAST_API_KEY")})
	if err != nil {
		log.Fatal(err)
	}
	p, err := client.CreatePoll(ctx, sdk.CreatePollParams{
		Question: "Best pizza topping?",
		Options:  []string{"Mushroom", "Pineapple"},
		Dedupe:   sdk.DedupeDevice, // one vote per device id
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := client.Vote(ctx, p.ID, sdk.Vote{Options: []string{"a"}, Voter: "device-1"}); err != nil {
		log.Fatal(err)
	}
	_, err = client.Vote(ctx, p.ID, sdk.Vote{Options: []string{"b"}, Voter: "device-1"})
	fmt.Println("the same device again:", errors.Is(err, sdk.ErrAlreadyVoted))

	// A 202 means the vote is stored; it is counted a moment later. Follow
	// the results live until it is.
	live, cancelLive := context.WithCancel(ctx)
	defer cancelLive()
	events, err := client.Live(live, p.ID)
	if err != nil {
		log.Fatal(err)
	}
	for ev := range events {
		if ev.Type == sdk.EventResults && ev.Results.Total == 1 {
			for _, o := range ev.Results.Options {
				fmt.Printf("%-10s %d\n", p.Label(o.ID), o.Votes)
			}
			cancelLive()
		}
	}
	// Output:
	// the same device again: true
	// Mushroom   1
	// Pineapple  0
}

func ExampleClient_Vote() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := newPoll(ctx, newClient(), sdk.DedupeDevice)

	// Votes need no key. Vote retries 429 and 503 answers (after their
	// Retry-After) and network errors with the same idempotency key, until
	// ctx's deadline or MaxAttempts.
	client, err := sdk.New(serverURL, sdk.Config{MaxAttempts: 5})
	if err != nil {
		log.Fatal(err)
	}
	receipt, err := client.Vote(ctx, p.ID, sdk.Vote{Options: []string{"b"}, Voter: "device-1"})
	switch {
	case errors.Is(err, sdk.ErrAlreadyVoted):
		fmt.Println("you already voted")
	case sdk.IsCode(err, sdk.CodePollClosed):
		fmt.Println("the poll is closed")
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println("vote stored after", receipt.Attempts, "attempt(s)")
	}
	// Output:
	// vote stored after 1 attempt(s)
}

func ExampleClient_Live() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := newClient()
	p := newPoll(ctx, client, sdk.DedupeNone)
	events, err := client.Live(ctx, p.ID)
	if err != nil {
		log.Fatal(err)
	}
	voted := false
	for ev := range events { // until ctx ends, or EventEnd
		switch ev.Type {
		case sdk.EventResults:
			fmt.Println("total", ev.Results.Total)
			if !voted { // vote once the first results are in
				voted = true
				for range 3 {
					if _, err := client.Vote(ctx, p.ID, sdk.Vote{Options: []string{"a"}}); err != nil {
						log.Fatal(err)
					}
				}
			}
			if ev.Results.Total == 3 {
				cancel()
			}
		case sdk.EventPoll:
			fmt.Println("poll is now", ev.Poll.Status)
		case sdk.EventDisconnected:
			fmt.Println("reconnecting:", ev.Err)
		case sdk.EventEnd:
			fmt.Println("stream over:", ev.Err)
		}
	}
	// Results arrive at most ten times a second: the three votes may come
	// as one update or several; the last one says 3.
}

func ExampleClient_AllPolls() {
	ctx := context.Background()
	client := newClient()
	p := newPoll(ctx, client, sdk.DedupeNone)
	if _, err := client.ClosePoll(ctx, p.ID); err != nil {
		log.Fatal(err)
	}
	// AllPolls pages through the list for you.
	closed := 0
	for q, err := range client.AllPolls(ctx, sdk.ListPollsParams{Status: sdk.StatusClosed}) {
		if err != nil {
			log.Fatal(err)
		}
		if q.ID == p.ID {
			fmt.Println(q.Question, q.Status)
		}
		closed++
	}
	fmt.Println(closed > 0)
	// Output:
	// Best pizza topping? closed
	// true
}

func ExampleClient_VoteBatch() {
	ctx := context.Background()
	client := newClient()
	p := newPoll(ctx, client, sdk.DedupeDevice)
	// Votes collected elsewhere (SMS, a kiosk), sent by a server that owns
	// the poll: up to sdk.MaxBatch at once, each answered on its own.
	results, err := client.VoteBatch(ctx, []sdk.BatchVote{
		{PollID: p.ID, Options: []string{"a"}, Voter: "sms:+4915112345678"},
		{PollID: p.ID, Options: []string{"b"}, Voter: "sms:+4915187654321"},
		{PollID: p.ID, Options: []string{"b"}, Voter: "sms:+4915112345678"},
		{PollID: p.ID, Options: []string{"z"}, Voter: "sms:+4915100000000"},
	})
	if err != nil {
		log.Fatal(err)
	}
	for i, r := range results {
		var e *sdk.Error
		if errors.As(r.Err(), &e) {
			fmt.Println("vote", i, "refused:", e.Code)
		} else {
			fmt.Println("vote", i, "accepted")
		}
	}
	// Output:
	// vote 0 accepted
	// vote 1 accepted
	// vote 2 refused: already_voted
	// vote 3 refused: invalid_option
}

func ExampleClient_Timeline() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := newClient()
	p := newPoll(ctx, client, sdk.DedupeNone)
	for _, o := range []string{"a", "a", "b"} {
		if _, err := client.Vote(ctx, p.ID, sdk.Vote{Options: []string{o}}); err != nil {
			log.Fatal(err)
		}
	}
	// Analytics trail the votes by up to a second or so: wait until all
	// three are in.
	var tl *sdk.Timeline
	for {
		var err error
		if tl, err = client.Timeline(ctx, p.ID, sdk.TimelineParams{Step: sdk.StepHour}); err != nil {
			log.Fatal(err)
		}
		n := int64(0)
		for _, pt := range tl.Points {
			n += pt.Votes
		}
		if n == 3 {
			break
		}
		select {
		case <-ctx.Done():
			log.Fatal("analytics did not catch up")
		case <-time.After(100 * time.Millisecond):
		}
	}
	fmt.Println("votes this hour:", tl.Points[len(tl.Points)-1].Votes)
	by, err := client.Breakdown(ctx, p.ID, sdk.ByDevice)
	if err != nil {
		log.Fatal(err)
	}
	for _, row := range by.Rows {
		fmt.Println(row.Key, row.Votes) // the SDK is no browser: device class "other"
	}
	// Output:
	// votes this hour: 3
	// other 3
}

func ExampleClient_ExportVotes() {
	ctx := context.Background()
	client := newClient()
	p := newPoll(ctx, client, sdk.DedupeNone)
	csv, err := client.ExportVotes(ctx, p.ID)
	if err != nil {
		log.Fatal(err)
	}
	defer csv.Close()
	header, err := bufio.NewReader(csv).ReadString('\n')
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(header)
	// Output:
	// vote_id,time,options,region,country,device,referrer
}

func ExampleError() {
	client, err := sdk.New(serverURL, sdk.Config{})
	if err != nil {
		log.Fatal(err)
	}
	_, err = client.Results(context.Background(), "no-such-poll")
	var e *sdk.Error
	if errors.As(err, &e) {
		fmt.Println(e.Status, e.Code)
	}
	fmt.Println(errors.Is(err, sdk.ErrNotFound))
	// Output:
	// 404 not_found
	// true
}
