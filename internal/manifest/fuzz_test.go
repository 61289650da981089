package manifest

import (
	"strings"
	"testing"
)

// FuzzParse: no input makes Parse panic, and whatever it accepts obeys the
// rules that keep files inside the store.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"schema":1,"avatarId":"rohan","version":"1","assets":[{"path":"a/b","size":1,"sha256":"` + hexA + `"}]}`))
	f.Add([]byte(`{"schema":1,"avatarId":"rohan","version":"1","assets":[{"path":"../x","size":1,"sha256":"` + hexA + `"}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data, "rohan", 0)
		if err != nil {
			return
		}
		for _, a := range m.Assets {
			if strings.HasPrefix(a.Path, "/") || strings.Contains("/"+a.Path+"/", "/../") || !ValidDigest(a.SHA256) || a.Size < 0 {
				t.Fatalf("accepted hostile asset %+v", a)
			}
		}
	})
}

// FuzzValidateID: accepted IDs are safe as URL path segments.
func FuzzValidateID(f *testing.F) {
	for _, s := range []string{"rohan", "../x", "%2e%2e", "", ".a", "a.b-c_d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if ValidateID(id) != nil {
			return
		}
		if id == "" || id[0] == '.' || strings.ContainsAny(id, "/%\\?#\x00 ") || len(id) > MaxIDLength {
			t.Fatalf("accepted %q", id)
		}
	})
}

// FuzzValidatePath: accepted paths never climb out of their directory.
func FuzzValidatePath(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "a/../../b", "/abs", "a//b", "a\\b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if ValidatePath(p) != nil {
			return
		}
		for _, seg := range strings.Split(p, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("accepted %q", p)
			}
		}
	})
}

// FuzzCanonical: canonical form is a fixed point.
func FuzzCanonical(f *testing.F) {
	f.Add([]byte(`{"b":[1,2.5,"x"],"a":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Canonical(data)
		if err != nil {
			return
		}
		c2, err := Canonical(c)
		if err != nil || string(c2) != string(c) {
			t.Fatalf("not a fixed point: %q -> %q (%v)", c, c2, err)
		}
	})
}
