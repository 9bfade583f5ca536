package testsvc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// ClickHouseServer is a private clickhouse-server process.
type ClickHouseServer struct {
	dir  string
	port int
	bin  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan error // receives the process's end
}

var (
	sharedCH   *ClickHouseServer
	sharedOnce sync.Once
	sharedErr  error
	dbSeq      atomic.Int64
)

// ClickHouse returns the DSN of a fresh, empty database on a ClickHouse
// server shared by the tests of this binary (started on first use; call
// StopAll from TestMain).
func ClickHouse(t testing.TB) string {
	t.Helper()
	bin := need(t, "clickhouse-server", "clickhouse-server")
	sharedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pollcast-clickhouse-")
		if err != nil {
			sharedErr = err
			return
		}
		sharedCH = &ClickHouseServer{dir: dir, port: freePort(t), bin: bin}
		sharedErr = sharedCH.Start()
	})
	if sharedErr != nil {
		t.Fatalf("clickhouse: %v", sharedErr)
	}
	return sharedCH.DSN(fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1)))
}

// StartClickHouse starts a ClickHouse server of the test's own, which the
// test may stop and start again; it is stopped at the end of the test.
func StartClickHouse(t testing.TB) *ClickHouseServer {
	t.Helper()
	s := &ClickHouseServer{dir: t.TempDir(), port: freePort(t), bin: need(t, "clickhouse-server", "clickhouse-server")}
	if err := s.Start(); err != nil {
		t.Fatalf("clickhouse: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StopAll stops the shared servers that were started.
func StopAll() {
	if sharedCH != nil {
		sharedCH.Stop()
		os.RemoveAll(sharedCH.dir)
	}
	if sharedRedis != nil {
		sharedRedis.Stop()
	}
}

// DSN returns the address of database db on the server.
func (s *ClickHouseServer) DSN(db string) string {
	return fmt.Sprintf("clickhouse://127.0.0.1:%d/%s", s.port, db)
}

// Start starts the server (again) and waits until it answers.
func (s *ClickHouseServer) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range []string{"log", "data", "tmp", "user_files", "format_schemas"} {
		if err := os.MkdirAll(filepath.Join(s.dir, d), 0o755); err != nil {
			return err
		}
	}
	users := `<yandex>
  <profiles><default></default></profiles>
  <users><default><password></password><networks><ip>::/0</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>`
	config := fmt.Sprintf(`<yandex>
  <logger><level>warning</level><log>%[1]s/log/server.log</log><errorlog>%[1]s/log/err.log</errorlog></logger>
  <tcp_port>%[2]d</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>%[1]s/data/</path>
  <tmp_path>%[1]s/tmp/</tmp_path>
  <user_files_path>%[1]s/user_files/</user_files_path>
  <format_schema_path>%[1]s/format_schemas/</format_schema_path>
  <users_config>%[1]s/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
</yandex>`, s.dir, s.port)
	if err := os.WriteFile(filepath.Join(s.dir, "users.xml"), []byte(users), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(s.dir, "config.xml"), []byte(config), 0o644); err != nil {
		return err
	}
	out, err := os.Create(filepath.Join(s.dir, "log", "stdout.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, "--config-file="+filepath.Join(s.dir, "config.xml"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return err
	}
	s.cmd = cmd
	exited := make(chan error, 1)
	s.exited = exited
	go func() { exited <- cmd.Wait(); out.Close() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := s.ping(); err == nil {
			return nil
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(s.dir, "log", "err.log"))
			return fmt.Errorf("clickhouse-server exited: %v\n%s", err, log)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			return fmt.Errorf("clickhouse-server on port %d did not answer within 60s", s.port)
		}
	}
}

func (s *ClickHouseServer) ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{"127.0.0.1:" + strconv.Itoa(s.port)}, DialTimeout: time.Second})
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Ping(ctx)
}

// Stop kills the server and waits until it is gone.
func (s *ClickHouseServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}
