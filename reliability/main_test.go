package reliability

import (
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/assetd/assetd/internal/testkit"
)

var (
	full       = flag.Bool("reliability.full", false, "run the long crash harness and load test (make reliability)")
	reportPath = flag.String("reliability.report", "", "write the results as Markdown to this file")
)

// bin is the assetd binary under test, built once.
var bin string

// waitLimit bounds every wait on the daemon.
const waitLimit = 60 * time.Second

func TestMain(m *testing.M) {
	if spec := os.Getenv(floodEnv); spec != "" {
		os.Exit(floodChild(spec))
	}
	flag.Parse()
	os.Exit(testkit.Main(m, &bin, report))
}

// report writes the Markdown report when -reliability.report asks for it;
// a failure to write it fails the run.
func report(code int) int {
	if *reportPath == "" {
		return code
	}
	if err := writeReport(*reportPath); err != nil {
		fmt.Fprintf(os.Stderr, "writing %s: %v\n", *reportPath, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
