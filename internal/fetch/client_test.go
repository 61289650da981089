package fetch

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package on a leaked goroutine: every pump reader and
// connection of a Client must be gone once the tests are.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestDefaultTransportHonoursProxyEnv(t *testing.T) {
	c := newClient(t, Config{BaseURL: "https://example.com"})
	tr, ok := c.http.Transport.(*transport).base.(*http.Transport)
	if !ok || tr.Proxy == nil {
		t.Fatalf("default transport %T has no proxy function", c.http.Transport.(*transport).base)
	}
	// http.ProxyFromEnvironment reads the environment once per process, so
	// check the function it is rather than a changed environment.
	if reflect.ValueOf(tr.Proxy).Pointer() != reflect.ValueOf(http.ProxyFromEnvironment).Pointer() {
		t.Errorf("Proxy is not http.ProxyFromEnvironment")
	}
}
