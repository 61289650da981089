package store

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the index schema this package writes (see doc.go).
const SchemaVersion = 2

var (
	bucketMeta     = []byte("meta")
	keySchema      = []byte("schema")
	bucketAvatars  = []byte("avatars")
	bucketRaw      = []byte("manifests")
	bucketLastUsed = []byte("lastused")
	bucketBlobs    = []byte("blobs")
	bucketIngest   = []byte("ingest") // schema 1 only
)

// A migration moves the index from version-1 to version. Each runs in its
// own transaction, which also records the new version.
type migration struct {
	version int
	name    string
	apply   func(tx *bolt.Tx) error
}

var migrations = []migration{
	{1, "create the buckets", func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketAvatars, bucketRaw, bucketLastUsed, bucketBlobs, bucketIngest} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}},
	// Partials are judged by their files at Open (reconcile.go: kept while
	// written to within ingestGrace); recording each one cost every Ingest
	// a transaction, and an fdatasync, for nothing.
	{2, "drop the ingest bucket", func(tx *bolt.Tx) error {
		if tx.Bucket(bucketIngest) == nil {
			return nil
		}
		return tx.DeleteBucket(bucketIngest)
	}},
}

func schemaOf(tx *bolt.Tx) int {
	b := tx.Bucket(bucketMeta)
	if b == nil {
		return 0
	}
	v := b.Get(keySchema)
	if len(v) != 8 {
		return 0
	}
	return int(binary.BigEndian.Uint64(v))
}

// migrate runs every migration newer than the index.
func migrate(db *bolt.DB, ms []migration) error {
	var cur int
	if err := db.View(func(tx *bolt.Tx) error { cur = schemaOf(tx); return nil }); err != nil {
		return err
	}
	if latest := ms[len(ms)-1].version; cur > latest {
		return fmt.Errorf("store index schema %d is newer than this assetd understands (%d)", cur, latest)
	}
	for _, m := range ms {
		if m.version <= cur {
			continue
		}
		err := db.Update(func(tx *bolt.Tx) error {
			if err := m.apply(tx); err != nil {
				return err
			}
			b, err := tx.CreateBucketIfNotExists(bucketMeta)
			if err != nil {
				return err
			}
			return b.Put(keySchema, u64(uint64(m.version)))
		})
		if err != nil {
			return fmt.Errorf("store index migration %d (%s): %w", m.version, m.name, err)
		}
	}
	return nil
}

// blobRec is the value of blobs/<hex>: a blob's size, how many current
// avatar versions reference it, and when it was committed (0 = not on
// disk: referenced but missing or removed as damaged).
type blobRec struct {
	size, refs int64
	committed  int64 // unix nanoseconds
}

func (r blobRec) isCommitted() bool { return r.committed != 0 }

func (r blobRec) encode() []byte {
	b := make([]byte, 24)
	binary.BigEndian.PutUint64(b[0:], uint64(r.size))
	binary.BigEndian.PutUint64(b[8:], uint64(r.refs))
	binary.BigEndian.PutUint64(b[16:], uint64(r.committed))
	return b
}

func decodeBlob(v []byte) (blobRec, error) {
	if len(v) != 24 {
		return blobRec{}, fmt.Errorf("blob record of %d bytes", len(v))
	}
	return blobRec{
		size:      int64(binary.BigEndian.Uint64(v[0:])),
		refs:      int64(binary.BigEndian.Uint64(v[8:])),
		committed: int64(binary.BigEndian.Uint64(v[16:])),
	}, nil
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}
