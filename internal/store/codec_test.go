package store

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/assetd/assetd/internal/manifest"
)

func sampleAvatar() *Avatar {
	return &Avatar{
		ID: "alice", Version: "v7", ManifestURL: "https://origin.example/v1/avatars/alice/manifest",
		ETag: `W/"abc"`, Source: "origin", Pinned: true, State: StateDamaged, Damaged: []string{"a/b.splat"},
		FetchedAt: time.Unix(0, 1767323045123456789), MaxAge: 90 * time.Second,
		Manifest: &manifest.Manifest{Schema: 1, AvatarID: "alice", Version: "v7",
			Assets: []manifest.Asset{
				{Path: "a/b.splat", Size: 12345, SHA256: digestOf([]byte("b")), URL: "https://cdn.example/b"},
				{Path: "c.json", Size: 0, SHA256: digestOf(nil)},
			},
			Signature: &manifest.Signature{KeyID: "k1", Ed25519: "c2lnbmF0dXJl"},
		},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for name, a := range map[string]*Avatar{
		"full": sampleAvatar(),
		"minimal": {ID: "m", State: StateReady,
			Manifest: &manifest.Manifest{Schema: 1, AvatarID: "m", Version: "1", Assets: []manifest.Asset{}}},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := encodeAvatar(a)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeAvatar(a.ID, b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(*a, got); diff != "" {
				t.Fatalf("round trip (-want +got):\n%s", diff)
			}
			for i := range b {
				if _, err := decodeAvatar(a.ID, b[:i]); err == nil {
					t.Fatalf("a record cut at %d of %d bytes decoded", i, len(b))
				}
			}
		})
	}
	bad := sampleAvatar()
	bad.Manifest.Assets[0].SHA256 = "nothex"
	if _, err := encodeAvatar(bad); err == nil {
		t.Fatal("a bad digest was encoded")
	}
}

// FuzzDecodeAvatar: any bytes decode without panicking, and whatever
// decodes encodes back to the same bytes.
func FuzzDecodeAvatar(f *testing.F) {
	b, _ := encodeAvatar(sampleAvatar())
	f.Add(b)
	f.Add([]byte{recordFormat})
	f.Add([]byte{recordFormat, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := decodeAvatar("x", data)
		if err != nil {
			return
		}
		again, err := encodeAvatar(&a)
		if err != nil {
			t.Fatalf("decoded record does not encode: %v", err)
		}
		if string(again) != string(data) {
			// Varints have one canonical form only when written by us;
			// compare by value instead.
			b, err := decodeAvatar("x", again)
			if err != nil || !cmp.Equal(a, b) {
				t.Fatalf("re-encoding changed the record: %v", err)
			}
		}
	})
}
