package testsvc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisServer is a private redis-server process (no persistence).
type RedisServer struct {
	Addr   string
	cmd    *exec.Cmd
	exited chan error
}

var (
	sharedRedis     *RedisServer
	sharedRedisOnce sync.Once
	sharedRedisErr  error
	prefixSeq       atomic.Int64
)

// Redis returns a client of a Redis server shared by the tests of this
// binary and a key prefix of the test's own.
func Redis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	bin := need(t, "redis-server", "redis-server")
	sharedRedisOnce.Do(func() {
		sharedRedis, sharedRedisErr = startRedis(bin, freePort(t))
	})
	if sharedRedisErr != nil {
		t.Fatalf("redis: %v", sharedRedisErr)
	}
	rdb := redis.NewClient(&redis.Options{Addr: sharedRedis.Addr})
	t.Cleanup(func() { rdb.Close() })
	return rdb, fmt.Sprintf("t%d-%d", os.Getpid(), prefixSeq.Add(1))
}

// StartRedis starts a Redis server of the test's own (it may FLUSHALL it);
// it is stopped at the end of the test.
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	s, err := startRedis(need(t, "redis-server", "redis-server"), freePort(t))
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

func startRedis(bin string, port int) (*RedisServer, error) {
	dir, err := os.MkdirTemp("", "pollcast-redis-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--daemonize", "no", "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &RedisServer{Addr: "127.0.0.1:" + strconv.Itoa(port), cmd: cmd, exited: make(chan error, 1)}
	go func() { s.exited <- cmd.Wait(); os.RemoveAll(dir) }()
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer rdb.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return s, nil
		}
		select {
		case err := <-s.exited:
			return nil, fmt.Errorf("redis-server exited: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("redis-server on %s did not answer within 30s", s.Addr)
		}
	}
}

// Stop kills the server and waits until it is gone.
func (s *RedisServer) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}
