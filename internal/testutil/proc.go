package testutil

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// BuildAimind builds the aimind binary, with extra go build flags, into a
// new temporary folder for a TestMain; the caller removes the folder.
func BuildAimind(flags ...string) (bin string, err error) {
	dir, err := os.MkdirTemp("", "aimind-bin-")
	if err != nil {
		return "", err
	}
	bin = filepath.Join(dir, "aimind")
	args := append(append([]string{"build"}, flags...), "-o", bin, "github.com/aimind/aimind/cmd/aimind")
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("cannot build aimind: %v\n%s", err, out)
	}
	return bin, nil
}

// FreePort is a loopback TCP port free at the time of the call.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// SyncBuffer collects a child process's output while it runs.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
