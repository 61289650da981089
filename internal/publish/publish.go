package publish

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/assetd/assetd/internal/manifest"
	"github.com/assetd/assetd/internal/printable"
)

// VersionFile names an avatar folder's version file; it is not an asset.
const VersionFile = "VERSION"

// Options tune Publish.
type Options struct {
	// Version is the version of avatar folders that have no VERSION file.
	Version string
	// Key signs every manifest when set.
	Key    ed25519.PrivateKey
	Logger *slog.Logger
}

// Manifest states in a Result.
const (
	ManifestAdded     = "added"
	ManifestUpdated   = "updated"
	ManifestUnchanged = "unchanged"
)

// Result reports what a Publish changed in OUT.
type Result struct {
	Avatars      []AvatarResult `json:"avatars"`
	Skipped      []string       `json:"skipped,omitempty"` // top-level entries of SRC that are not avatars
	BlobsAdded   int            `json:"blobsAdded"`
	BytesAdded   int64          `json:"bytesAdded"`
	BlobsPresent int            `json:"blobsPresent"` // distinct blobs that were already in OUT
}

// AvatarResult is one avatar of a Result.
type AvatarResult struct {
	ID       string `json:"avatarId"`
	Version  string `json:"version"`
	Assets   int    `json:"assets"`
	Size     int64  `json:"size"`
	Manifest string `json:"manifest"` // ManifestAdded, ManifestUpdated or ManifestUnchanged
	KeyID    string `json:"keyId,omitempty"`
	// BlobsAdded counts the blobs written for this avatar; a blob shared
	// with an avatar published before it in the same run counts there.
	BlobsAdded int `json:"blobsAdded"`
}

// ManifestPath is where an origin tree keeps avatar id's manifest,
// relative to its root, '/'-separated.
func ManifestPath(id string) string { return "v1/avatars/" + id + "/manifest" }

// BlobPath is where an origin tree keeps the blob with this sha256.
func BlobPath(digest string) string { return "v1/blobs/sha256/" + digest }

// source is one asset found in SRC.
type source struct {
	asset manifest.Asset
	name  string // its name inside the SRC root
}

type avatar struct {
	id, version string
	files       []source
	doc         []byte // the manifest as it will be written
}

// Publish writes the avatars in src as an origin tree in out. Nothing is
// written unless every avatar in src is valid.
func Publish(ctx context.Context, src, out string, opts Options) (res *Result, err error) {
	defer func() {
		if err != nil {
			err = &printableError{err}
		}
	}()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := checkDirs(src, out); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(src)
	if err != nil {
		return nil, err
	}
	defer root.Close()

	ids, skipped, err := listAvatars(root)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%s holds no avatar folders", src)
	}
	var avatars []*avatar
	for _, id := range ids {
		a, err := scan(ctx, root, id, opts.Version)
		if err != nil {
			return nil, err
		}
		if a.doc, err = buildManifest(a, opts.Key); err != nil {
			return nil, err
		}
		avatars = append(avatars, a)
	}

	res = &Result{Skipped: skipped}
	keyID := ""
	if opts.Key != nil {
		keyID = KeyID(opts.Key.Public().(ed25519.PublicKey))
	}
	for _, a := range avatars {
		res.Avatars = append(res.Avatars, AvatarResult{ID: a.id, Version: a.version, Assets: len(a.files), KeyID: keyID})
	}
	if err := writeBlobs(ctx, root, out, avatars, res, log); err != nil {
		return res, err
	}
	// Manifests last: every blob they name is already durable.
	for i, a := range avatars {
		state, err := putManifest(out, a, log)
		if err != nil {
			return res, err
		}
		res.Avatars[i].Manifest = state
		log.Info("published", "avatar", a.id, "version", a.version, "manifest", state,
			"assets", len(a.files), "blobsAdded", res.Avatars[i].BlobsAdded)
	}
	return res, nil
}

// printableError is an error of Publish whose text is escaped where it is
// not printable (a path an os error names), keeping what it wraps.
type printableError struct{ err error }

func (e *printableError) Error() string {
	s := e.err.Error()
	if printable.String(s) {
		return s
	}
	q := strconv.Quote(s)
	return strings.ReplaceAll(q[1:len(q)-1], `\"`, `"`)
}

func (e *printableError) Unwrap() error { return e.err }
