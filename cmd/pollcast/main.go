// Command pollcast runs the pollcast live polling engine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/pollcast/pollcast/internal/cli"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(args, getenv, stdout, stderr)
	case "bench":
		return cli.Bench(args, getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, "Usage: pollcast [serve] [flags]\n\nCommands:\n  serve   run every role in one process (the default)\n  bench   load-test a server: pollcast bench http|ws|batch|viewers (see 'pollcast bench -h')\n\nRun 'pollcast serve -h' for the flags.")
		fmt.Fprint(stdout, "\n"+cli.Help)
		return 0
	default:
		if slices.Contains(cli.Commands(), cmd) {
			return cli.Run(cmd, args, getenv, stdout, stderr)
		}
		fmt.Fprintf(stderr, "pollcast: unknown command %q (try 'pollcast help')\n", cmd)
		return 2
	}
}

func serve(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "pollcast: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := NewMain(cfg, newLogger(cfg, stderr), stdout)
	if err := m.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "pollcast: %v\n", err)
		m.Close()
		return 1
	}
	<-ctx.Done()
	m.logger.Info("shutting down")
	if err := m.Close(); err != nil {
		fmt.Fprintf(stderr, "pollcast: shutdown: %v\n", err)
		return 1
	}
	return 0
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
