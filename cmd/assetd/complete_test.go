package main

import (
	"strings"
	"testing"
)

// TestCompleteCachedIDs: the shells' completion (cobra's __complete) offers
// the cached avatars' IDs, not file names, for the commands that take IDs;
// nothing (and no files) when the daemon does not answer; directories for
// import's DIR.
func TestCompleteCachedIDs(t *testing.T) {
	f := startDaemon(t)
	for _, id := range []string{"rohan", "mei", "maya"} {
		f.Put(testAvatar(id, 1024))
	}
	complete := func(args ...string) (ids []string, directive string) {
		t.Helper()
		out, errOut, code := cli(t, t.Context(), "", append([]string{"__complete", "--socket", f.sock}, args...)...)
		if code != 0 {
			t.Fatalf("__complete %v: exit %d\n%s", args, code, errOut)
		}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if strings.HasPrefix(l, ":") {
				directive = l
			} else if l != "" {
				ids = append(ids, l)
			}
		}
		return ids, directive
	}
	const noFiles = ":4" // cobra.ShellCompDirectiveNoFileComp
	if ids, d := complete("get", ""); strings.Join(ids, " ") != "maya mei rohan" || d != noFiles {
		t.Errorf("get: %v %s, want maya mei rohan and no files", ids, d)
	}
	if ids, _ := complete("rm", "rohan", "m"); strings.Join(ids, " ") != "maya mei" {
		t.Errorf("rm rohan m: %v, want maya mei", ids)
	}
	if ids, d := complete("get", "rohan", ""); len(ids) != 0 || d != noFiles {
		t.Errorf("get's second argument: %v %s, want nothing", ids, d)
	}
	if _, d := complete("import", "rohan", ""); d != ":16" { // ShellCompDirectiveFilterDirs
		t.Errorf("import's DIR: directive %s, want directories", d)
	}
	f2 := "/nonexistent/assetd.sock"
	out, _, code := cli(t, t.Context(), "", "__complete", "--socket", f2, "pin", "")
	if code != 0 || strings.TrimSpace(out) != noFiles {
		t.Errorf("with no daemon: exit %d, %q, want only %s", code, out, noFiles)
	}
}
