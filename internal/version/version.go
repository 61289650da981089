// Package version holds the build's version, stamped by the linker
// (-X github.com/assetd/assetd/internal/version.Version=...).
package version

// Version, Commit and Date are set at link time.
var (
	Version = "dev"
	Commit  = ""
	Date    = ""
)

// UserAgent is what assetd sends to origins.
func UserAgent() string { return "assetd/" + Version }
