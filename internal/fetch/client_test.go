package fetch

import (
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package on a leaked goroutine: every pump reader and
// connection of a Client must be gone once the tests are.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }
