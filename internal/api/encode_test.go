package api

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
)

// appendAvatar knows every field; a field added to apitype must be added
// to it too.
func TestAppendAvatarKnowsEveryField(t *testing.T) {
	if n := reflect.TypeFor[apitype.Avatar]().NumField(); n != 9 {
		t.Errorf("apitype.Avatar has %d fields; appendAvatar writes 9: update encode.go", n)
	}
	if n := reflect.TypeFor[apitype.Asset]().NumField(); n != 4 {
		t.Errorf("apitype.Asset has %d fields; appendAvatar writes 4: update encode.go", n)
	}
}

func TestAppendAvatarMatchesEncodingJSON(t *testing.T) {
	when := time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.FixedZone("x", 3600))
	for _, a := range []*apitype.Avatar{
		{},
		{AvatarID: "rohan", Version: "v1", State: apitype.StateReady, SizeBytes: 42, LastUsed: when, Pinned: true,
			Source: "origin", Damaged: []string{"a", "b"}, Assets: []apitype.Asset{{Path: "a", Size: 1, SHA256: "ab", LocalPath: "/x"}, {}}},
		{AvatarID: "x", Assets: []apitype.Asset{}, Damaged: []string{}},
		{Version: "<&>\"\\\n\t\x00é\u2028\xff", Source: "ünïcode", Damaged: []string{"a\"b"},
			Assets: []apitype.Asset{{Path: "p<a>th", LocalPath: "/var/lib/assetd/ü"}}},
		{LastUsed: time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		want, werr := json.Marshal(a)
		if (werr == nil) != encodable(a) {
			t.Errorf("encodable = %v, encoding/json error %v", encodable(a), werr)
		}
		if werr != nil {
			continue
		}
		got := appendAvatar(nil, a)
		if string(got) != string(want) {
			t.Errorf("appendAvatar:\n got %s\nwant %s", got, want)
		}
	}
}

func FuzzAppendAvatar(f *testing.F) {
	f.Add("rohan", "v1", "model.splat", "/var/lib/x", int64(5), true)
	f.Add("<>&", "\u2028", "\xff\xfe", "\"\\", int64(-1), false)
	f.Fuzz(func(t *testing.T, id, version, path, local string, size int64, pinned bool) {
		a := &apitype.Avatar{AvatarID: id, Version: version, SizeBytes: size, Pinned: pinned,
			LastUsed: time.Unix(size%1e10, 0).UTC(), Source: local, Damaged: []string{path},
			Assets: []apitype.Asset{{Path: path, Size: size, SHA256: id, LocalPath: local}}}
		want, err := json.Marshal(a)
		if (err == nil) != encodable(a) {
			t.Fatalf("encodable = %v, encoding/json error %v", encodable(a), err)
		}
		if err != nil {
			return
		}
		if got := appendAvatar(nil, a); string(got) != string(want) {
			t.Errorf("appendAvatar:\n got %s\nwant %s", got, want)
		}
	})
}

// BenchmarkAppendAvatar encodes a cached GET's answer: five files with
// their digests and local paths.
func BenchmarkAppendAvatar(b *testing.B) {
	a := &apitype.Avatar{AvatarID: "avatar-07", Version: "2026-11-01.1", State: apitype.StateReady, SizeBytes: 8 << 20,
		LastUsed: time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.UTC), Source: "origin"}
	for _, p := range []string{"model.splat", "textures/albedo.ktx2", "textures/normal.ktx2", "anim/talk.bin", "meta.json"} {
		a.Assets = append(a.Assets, apitype.Asset{Path: p, Size: 1 << 20,
			SHA256:    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
			LocalPath: "/var/lib/assetd/blobs/sha256/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"})
	}
	var buf []byte
	for b.Loop() {
		buf = appendAvatar(buf[:0], a)
	}
	b.SetBytes(int64(len(buf)))
}
