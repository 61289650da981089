package e2e

import (
	"os"
	"testing"

	"github.com/assetd/assetd/internal/testkit"
)

// bin is the assetd binary under test.
var bin string

func TestMain(m *testing.M) { os.Exit(testkit.Main(m, &bin, nil)) }
