package tally

import (
	"os"
	"testing"

	"github.com/pollcast/pollcast/internal/testsvc"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testsvc.StopAll()
	os.Exit(code)
}
