package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/pollcast/pollcast/sdk"
)

// The examples need a running server: `make run` starts one on
// http://127.0.0.1:8080 and prints its admin key.

func Example() {
	ctx := context.Background()
	client, err := sdk.New("http://127.0.0.1:8080", sdk.Config{APIKey: os.Getenv("POLLCAST_API_KEY")})
	if err != nil {
		log.Fatal(err)
	}
	p, err := client.CreatePoll(ctx, sdk.CreatePollParams{
		Question: "Best pizza topping?",
		Options:  []string{"Mushroom", "Pineapple"},
		Dedupe:   sdk.DedupeDevice,
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := client.Vote(ctx, p.ID, sdk.Vote{Options: []string{"a"}, Voter: "device-1"}); err != nil {
		log.Fatal(err)
	}
	r, err := client.Results(ctx, p.ID)
	if err != nil {
		log.Fatal(err)
	}
	for _, o := range r.Options {
		fmt.Printf("%-10s %d\n", p.Label(o.ID), o.Votes)
	}
}

func ExampleClient_Vote() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := sdk.New("http://127.0.0.1:8080", sdk.Config{MaxAttempts: 5})
	if err != nil {
		log.Fatal(err)
	}
	// Vote retries 429 and 503 answers (after their Retry-After) and network
	// errors with the same idempotency key, until ctx's deadline.
	receipt, err := client.Vote(ctx, "k7Hq2mPz9c-x", sdk.Vote{Options: []string{"b"}, Voter: "device-1"})
	switch {
	case errors.Is(err, sdk.ErrAlreadyVoted):
		fmt.Println("you already voted")
	case sdk.IsCode(err, sdk.CodePollClosed):
		fmt.Println("the poll is closed")
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println("vote", receipt.VoteID, "stored after", receipt.Attempts, "attempt(s)")
	}
}

func ExampleClient_Live() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client, err := sdk.New("http://127.0.0.1:8080", sdk.Config{})
	if err != nil {
		log.Fatal(err)
	}
	events, err := client.Live(ctx, "k7Hq2mPz9c-x")
	if err != nil {
		log.Fatal(err)
	}
	for ev := range events { // until ctx ends
		switch ev.Type {
		case sdk.EventResults:
			fmt.Println("total", ev.Results.Total, "version", ev.Results.Version)
		case sdk.EventPoll:
			fmt.Println("poll is now", ev.Poll.Status)
		case sdk.EventDisconnected:
			fmt.Println("reconnecting:", ev.Err)
		case sdk.EventEnd:
			fmt.Println("stream over:", ev.Err)
		}
	}
}

func ExampleClient_AllPolls() {
	ctx := context.Background()
	client, err := sdk.New("http://127.0.0.1:8080", sdk.Config{APIKey: os.Getenv("POLLCAST_API_KEY")})
	if err != nil {
		log.Fatal(err)
	}
	for p, err := range client.AllPolls(ctx, sdk.ListPollsParams{Status: sdk.StatusOpen}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(p.ID, p.Question)
	}
}

func ExampleClient_VoteBatch() {
	ctx := context.Background()
	client, err := sdk.New("http://127.0.0.1:8080", sdk.Config{APIKey: os.Getenv("POLLCAST_API_KEY")})
	if err != nil {
		log.Fatal(err)
	}
	results, err := client.VoteBatch(ctx, []sdk.BatchVote{
		{PollID: "k7Hq2mPz9c-x", Options: []string{"a"}, Voter: "sms:+4915112345678"},
		{PollID: "k7Hq2mPz9c-x", Options: []string{"b"}, Voter: "sms:+4915187654321"},
	})
	if err != nil {
		log.Fatal(err)
	}
	for i, r := range results {
		if err := r.Err(); err != nil {
			fmt.Println("vote", i, "refused:", err)
		}
	}
}

func ExampleClient_Timeline() {
	ctx := context.Background()
	client, err := sdk.New("http://127.0.0.1:8080", sdk.Config{APIKey: os.Getenv("POLLCAST_API_KEY")})
	if err != nil {
		log.Fatal(err)
	}
	tl, err := client.Timeline(ctx, "k7Hq2mPz9c-x", sdk.TimelineParams{Step: sdk.Step5Minutes})
	if err != nil {
		log.Fatal(err)
	}
	for _, pt := range tl.Points {
		fmt.Println(pt.T.Format(time.Kitchen), pt.Votes)
	}
	by, err := client.Breakdown(ctx, "k7Hq2mPz9c-x", sdk.ByCountry)
	if err != nil {
		log.Fatal(err)
	}
	for _, row := range by.Rows {
		fmt.Println(row.Key, row.Votes)
	}
}

func ExampleClient_ExportVotes() {
	ctx := context.Background()
	client, err := sdk.New("http://127.0.0.1:8080", sdk.Config{APIKey: os.Getenv("POLLCAST_API_KEY")})
	if err != nil {
		log.Fatal(err)
	}
	csv, err := client.ExportVotes(ctx, "k7Hq2mPz9c-x")
	if err != nil {
		log.Fatal(err)
	}
	defer csv.Close()
	if _, err := io.Copy(os.Stdout, csv); err != nil {
		log.Fatal(err)
	}
}

func ExampleError() {
	client, err := sdk.New("http://127.0.0.1:8080", sdk.Config{})
	if err != nil {
		log.Fatal(err)
	}
	_, err = client.Results(context.Background(), "no-such-poll")
	var e *sdk.Error
	if errors.As(err, &e) {
		fmt.Println(e.Status, e.Code, e.Detail)
	}
}
