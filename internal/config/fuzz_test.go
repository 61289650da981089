package config

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzParse: no document makes Parse panic, and every accepted document
// prints (String) as TOML that parses back to the same configuration.
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile(examplePath); err == nil {
		f.Add(data)
	}
	f.Add([]byte("[fetch]\nconcurrency = 8\nmax_asset_bytes = \"1.5GB\"\n"))
	f.Add([]byte("fetch = { retry_wait_min = \"1s\" }\napi.socket_mode = 0o640\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.toml")
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		again, err := Parse([]byte(c.String()), "fuzz.toml")
		if err != nil {
			t.Fatalf("String() of an accepted config does not parse: %v\n%s", err, c)
		}
		if diff := cmp.Diff(c, again); diff != "" {
			t.Fatalf("round trip:\n%s", diff)
		}
	})
}
