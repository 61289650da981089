package store

import (
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func rawDB(t *testing.T) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "index.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestMigrations runs every migration from an empty index, one version at
// a time, and checks the schema after each; then the whole table again,
// which must change nothing.
func TestMigrations(t *testing.T) {
	db := rawDB(t)
	for i, m := range migrations {
		if m.version != i+1 {
			t.Fatalf("migration %d has version %d: versions must count from 1", i, m.version)
		}
		if err := migrate(db, migrations[:i+1]); err != nil {
			t.Fatalf("migration %d (%s): %v", m.version, m.name, err)
		}
		db.View(func(tx *bolt.Tx) error {
			if got := schemaOf(tx); got != m.version {
				t.Fatalf("after migration %d the schema is %d", m.version, got)
			}
			return nil
		})
	}
	if migrations[len(migrations)-1].version != SchemaVersion {
		t.Fatalf("the last migration is %d, SchemaVersion %d", migrations[len(migrations)-1].version, SchemaVersion)
	}
	if err := migrate(db, migrations); err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketAvatars, bucketLastUsed, bucketBlobs, bucketIngest} {
			if tx.Bucket(b) == nil {
				t.Errorf("bucket %s missing", b)
			}
		}
		return nil
	})
}

func TestMigrationRefusesNewerSchema(t *testing.T) {
	db := rawDB(t)
	db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucket(bucketMeta)
		return b.Put(keySchema, u64(SchemaVersion+1))
	})
	err := migrate(db, migrations)
	if err == nil || !strings.Contains(err.Error(), "newer than this assetd understands") {
		t.Fatalf("migrate = %v", err)
	}
}

func TestOpenMigratesAnEmptyIndex(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, "index.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	s := openT(t, dir, Options{})
	defer s.Close()
	s.db.View(func(tx *bolt.Tx) error {
		if schemaOf(tx) != SchemaVersion {
			t.Fatalf("schema %d", schemaOf(tx))
		}
		return nil
	})
}
