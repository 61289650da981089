package api

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/assetd/assetd/apitype"
)

// appendAvatar appends the JSON of a, byte for byte what encoding/json
// writes (encode_test.go holds it to that), without reflection: cached
// GET /v1/avatars/{id} is the hot route.
func appendAvatar(b []byte, a *apitype.Avatar) []byte {
	b = append(b, `{"avatarId":`...)
	b = appendString(b, a.AvatarID)
	b = append(b, `,"version":`...)
	b = appendString(b, a.Version)
	b = append(b, `,"state":`...)
	b = appendString(b, string(a.State))
	b = append(b, `,"sizeBytes":`...)
	b = strconv.AppendInt(b, a.SizeBytes, 10)
	b = append(b, `,"lastUsed":`...)
	b = appendTime(b, a.LastUsed)
	b = append(b, `,"pinned":`...)
	b = strconv.AppendBool(b, a.Pinned)
	if a.Source != "" {
		b = append(b, `,"source":`...)
		b = appendString(b, a.Source)
	}
	if len(a.Damaged) > 0 {
		b = append(b, `,"damaged":[`...)
		for i, d := range a.Damaged {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, d)
		}
		b = append(b, ']')
	}
	b = append(b, `,"assets":`...)
	if a.Assets == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range a.Assets {
			as := &a.Assets[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"path":`...)
			b = appendString(b, as.Path)
			b = append(b, `,"size":`...)
			b = strconv.AppendInt(b, as.Size, 10)
			b = append(b, `,"sha256":`...)
			b = appendString(b, as.SHA256)
			b = append(b, `,"localPath":`...)
			b = appendString(b, as.LocalPath)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// encodable reports whether appendAvatar can write a: encoding/json
// refuses times outside years 0-9999.
func encodable(a *apitype.Avatar) bool {
	y := a.LastUsed.Year()
	return y >= 0 && y <= 9999
}

// appendString writes plain ASCII strings directly and leaves every other
// one to encoding/json, so that escaping is always encoding/json's.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plain[s[i]] {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plain holds the bytes encoding/json writes as they are: printable ASCII
// but for '"', '\\' and the HTML characters '<', '>' and '&' (it escapes
// those by default). A lookup is cheaper than seven comparisons: the local
// paths and digests of every cached GET pass through it.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = true
	}
	for _, c := range `"\<>&` {
		t[c] = false
	}
	return t
}()

// appendTime writes t as time.Time.MarshalJSON does; that refuses years
// outside 0-9999, and so do callers (encodable).
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}
