package reliability

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

var (
	full       = flag.Bool("reliability.full", false, "run the long crash harness and load test (make reliability)")
	reportPath = flag.String("reliability.report", "", "write the results as Markdown to this file")
	knownBugs  = flag.Bool("reliability.known-bugs", false, "fail, rather than skip, on the open bugs the suite found")
)

// bin is the assetd binary under test, built once.
var bin string

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "assetd-rel-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin = filepath.Join(dir, "assetd")
	build := exec.Command("go", "build", "-o", bin, "./cmd/assetd")
	build.Dir = ".."
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building assetd: %v\n", err)
		return 1
	}
	code := m.Run()
	if *reportPath != "" {
		if err := writeReport(*reportPath); err != nil {
			fmt.Fprintf(os.Stderr, "writing %s: %v\n", *reportPath, err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}
