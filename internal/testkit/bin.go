package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// bin is the binary Main built, for Env.Spawn.
var bin string

// Main builds ./cmd/assetd into a fresh temp dir, stores its path in *out,
// runs the tests and then after (when not nil) with their exit code, and
// removes the binary. It returns the exit code for os.Exit; a failed build
// is 1.
func Main(m *testing.M, out *string, after func(code int) int) int {
	dir, err := os.MkdirTemp("", "assetd-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin = filepath.Join(dir, "assetd")
	build := exec.Command("go", "build", "-o", bin, "github.com/assetd/assetd/cmd/assetd")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building assetd: %v\n", err)
		return 1
	}
	*out = bin
	code := m.Run()
	if after != nil {
		code = after(code)
	}
	return code
}
