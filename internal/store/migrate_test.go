package store

import (
	"os"
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
		for _, b := range [][]byte{bucketMeta, bucketAvatars, bucketRaw, bucketLastUsed, bucketBlobs} {
			if tx.Bucket(b) == nil {
				t.Errorf("bucket %s missing", b)
			}
		}
		if tx.Bucket(bucketIngest) != nil {
			t.Error("bucket ingest kept")
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

// TestMigrationDropsIngestBucket: a schema-1 store, its ingest bucket
// holding a partial's record, opens at schema 2 without the bucket; the
// partial itself stays for resume (reconcile judges it by its file).
func TestMigrationDropsIngestBucket(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	d := digestOf([]byte("partial"))
	s.Close()
	// The partial where a schema-1 assetd kept it: ingest/<hex>/data.
	legacy := filepath.Join(dir, "ingest", d)
	if err := os.Mkdir(legacy, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(legacy, "data"), []byte("par"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Back to schema 1, as an older assetd left it.
	db, err := bolt.Open(filepath.Join(dir, "index.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bucketIngest)
		if err != nil {
			return err
		}
		if err := b.Put([]byte(d), make([]byte, 16)); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keySchema, u64(1))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ingest", d, "data")); err != nil {
		t.Fatal(err)
	}

	s = openT(t, dir, Options{})
	defer s.Close()
	s.db.View(func(tx *bolt.Tx) error {
		if schemaOf(tx) != SchemaVersion || SchemaVersion != 2 {
			t.Errorf("schema %d, SchemaVersion %d", schemaOf(tx), SchemaVersion)
		}
		if tx.Bucket(bucketIngest) != nil {
			t.Error("the ingest bucket survived the migration")
		}
		return nil
	})
	if n := s.Partial(d); n != 3 {
		t.Errorf("Partial = %d after the migration, want 3", n)
	}
	checkConsistent(t, s)
}
