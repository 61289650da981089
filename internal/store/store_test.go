package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/errs"
)

func TestStore(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, dir string)
	}{
		{"resume after reopen", func(t *testing.T, dir string) {
			data := bytes.Repeat([]byte("avatar!"), 1000)
			d := digestOf(data)
			s := openT(t, dir, Options{})
			w, err := s.Ingest(ctx, d, int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			half := len(data) / 2
			if _, err := w.Write(data[:half]); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openT(t, dir, Options{})
			defer s.Close()
			if got := s.Partial(d); got != int64(half) {
				t.Fatalf("Partial = %d, want %d", got, half)
			}
			w, err = s.Ingest(ctx, d, int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			if w.Size() != int64(half) || w.Digest() != digestOf(data[:half]) {
				t.Fatalf("resumed at %d %s, want %d %s", w.Size(), w.Digest(), half, digestOf(data[:half]))
			}
			if _, err := w.Write(data[half:]); err != nil {
				t.Fatal(err)
			}
			if err := w.Commit(); err != nil {
				t.Fatal(err)
			}
			if !s.HasBlob(d) || s.Partial(d) != 0 {
				t.Fatalf("HasBlob %v, Partial %d after commit", s.HasBlob(d), s.Partial(d))
			}
			got, err := os.ReadFile(s.BlobPath(d))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("blob content wrong: %v", err)
			}
			checkConsistent(t, s)
		}},
		{"commit of an existing blob", func(t *testing.T, dir string) {
			s := openT(t, dir, Options{})
			defer s.Close()
			data := []byte("same bytes")
			d := commitT(t, s, data)
			if d2 := commitT(t, s, data); d2 != d {
				t.Fatal("digest changed")
			}
			if _, err := os.Stat(s.partialPath(d)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("partial left: %v", err)
			}
			if diff := cmp.Diff([]string{d}, blobFiles(t, s)); diff != "" {
				t.Fatal(diff)
			}
			checkConsistent(t, s)
		}},
		{"digest mismatch", func(t *testing.T, dir string) {
			s := openT(t, dir, Options{})
			defer s.Close()
			want := digestOf([]byte("good"))
			w, err := s.Ingest(ctx, want, 4)
			if err != nil {
				t.Fatal(err)
			}
			w.Write([]byte("evil"))
			err = w.Commit()
			if !errors.Is(err, &errcode.Error{Code: errcode.FailedToDownloadAvatarAssets, Reason: errcode.ReasonHashMismatch}) {
				t.Fatalf("Commit = %v, want hashMismatch", err)
			}
			if s.HasBlob(want) || len(blobFiles(t, s)) != 0 || s.Partial(want) != 0 {
				t.Fatal("a mismatched blob was kept")
			}
			checkConsistent(t, s)
		}},
		{"size mismatch", func(t *testing.T, dir string) {
			s := openT(t, dir, Options{})
			defer s.Close()
			data := []byte("twelve bytes")
			d := digestOf(data)
			w, err := s.Ingest(ctx, d, 12)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(data[:5])
			if err := w.Commit(); !errors.Is(err, &errcode.Error{Code: errcode.FailedToDownloadAvatarAssets, Reason: errcode.ReasonSizeMismatch}) {
				t.Fatalf("Commit = %v, want sizeMismatch", err)
			}
			w, _ = s.Ingest(ctx, d, 4)
			if n, err := w.Write(data); n != 4 || !errors.Is(err, &errcode.Error{Reason: errcode.ReasonSizeMismatch, Code: errcode.FailedToDownloadAvatarAssets}) {
				t.Fatalf("Write past the size = %d, %v", n, err)
			}
			w.Abort()
			if s.HasBlob(d) || len(blobFiles(t, s)) != 0 {
				t.Fatal("a short blob was committed")
			}
			checkConsistent(t, s)
		}},
		{"abort", func(t *testing.T, dir string) {
			s := openT(t, dir, Options{})
			defer s.Close()
			d := digestOf([]byte("abc"))
			w, _ := s.Ingest(ctx, d, 3)
			w.Write([]byte("ab"))
			if err := w.Abort(); err != nil {
				t.Fatal(err)
			}
			if s.Partial(d) != 0 {
				t.Fatal("partial kept after Abort")
			}
			if err := w.Close(); err != nil {
				t.Fatal("Close after Abort:", err)
			}
			w, _ = s.Ingest(ctx, d, 3)
			if w.Size() != 0 {
				t.Fatal("ingest after Abort did not start at 0")
			}
			w.Close()
		}},
		{"truncate", func(t *testing.T, dir string) {
			s := openT(t, dir, Options{})
			defer s.Close()
			data := []byte("restart me")
			d := digestOf(data)
			w, _ := s.Ingest(ctx, d, int64(len(data)))
			w.Write([]byte("garbage"))
			if err := w.Truncate(); err != nil || w.Size() != 0 || w.Digest() != digestOf(nil) {
				t.Fatalf("Truncate: %v size %d", err, w.Size())
			}
			w.Write(data)
			if err := w.Commit(); err != nil {
				t.Fatal(err)
			}
		}},
		{"ENOSPC", func(t *testing.T, dir string) {
			full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
			if err != nil {
				t.Skip("no /dev/full")
			}
			s := openT(t, dir, Options{})
			defer s.Close()
			d := digestOf([]byte("xyz"))
			w, _ := s.Ingest(ctx, d, 3)
			w.f.Close()
			w.f = full
			_, err = w.Write([]byte("xyz"))
			if !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, &errcode.Error{Code: errcode.FailedToDownloadAvatarAssets, Reason: errcode.ReasonInsufficientStorage}) {
				t.Fatalf("Write = %v, want ENOSPC insufficientStorage", err)
			}
			if err := w.Abort(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(s.partialPath(d)); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("partial kept after Abort")
			}
		}},
		{"one writer per digest, lock honours ctx", func(t *testing.T, dir string) {
			s := openT(t, dir, Options{})
			defer s.Close()
			d := digestOf([]byte("x"))
			w, _ := s.Ingest(ctx, d, 1)
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := s.Ingest(cctx, d, 1); !errors.Is(err, context.Canceled) {
				t.Fatalf("second Ingest = %v, want context.Canceled", err)
			}
			got := make(chan *Writer)
			go func() {
				w2, _ := s.Ingest(ctx, d, 1)
				got <- w2
			}()
			w.Write([]byte("x"))
			w.Commit()
			w2 := <-got
			if err := w2.Commit(); err != nil {
				t.Fatalf("commit of an existing blob: %v", err)
			}
		}},
		{"bad digests never become paths", func(t *testing.T, dir string) {
			s := openT(t, dir, Options{})
			defer s.Close()
			for _, d := range []string{"../../etc/passwd", "ABC", digestOf(nil)[:63] + "/"} {
				if _, err := s.Ingest(ctx, d, 1); err == nil {
					t.Fatalf("Ingest(%q) worked", d)
				}
				if s.RemoveBlob(d) == nil || s.VerifyBlob(ctx, d) == nil || s.Partial(d) != 0 {
					t.Fatalf("%q accepted", d)
				}
			}
		}},
		{"reconcile", func(t *testing.T, dir string) {
			clk := newClock()
			s := openT(t, dir, Options{Now: clk.Now})
			putT(t, s, "a", "1", map[string]string{"x": "shared", "y": "only a"})
			putT(t, s, "b", "1", map[string]string{"x": "shared", "z": "only b"})
			putT(t, s, "c", "1", map[string]string{"w": "only c, truncated"})
			putT(t, s, "d", "1", map[string]string{"v": "only d"})
			orphan := commitT(t, s, []byte("committed, never referenced"))
			clk.Advance(2 * orphanGrace)
			young := commitT(t, s, []byte("committed just now"))
			partial := digestOf([]byte("partial"))
			w, _ := s.Ingest(ctx, partial, 7)
			w.Write([]byte("par"))
			w.Close()
			s.Close()
			// Disk damage while the daemon was down.
			stray := digestOf([]byte("stray"))
			os.WriteFile(filepath.Join(dir, "blobs", "sha256", stray), []byte("stray"), 0o444)
			os.Remove(filepath.Join(dir, "blobs", "sha256", digestOf([]byte("only b"))))
			cpath := filepath.Join(dir, "blobs", "sha256", digestOf([]byte("only c, truncated")))
			os.Chmod(cpath, 0o644)
			os.Truncate(cpath, 3)
			oldIngest := filepath.Join(dir, "ingest", digestOf([]byte("old")))
			os.WriteFile(oldIngest, []byte("ol"), 0o600)
			old := clk.Now().Add(-2 * ingestGrace)
			os.Chtimes(oldIngest, old, old)
			recent := filepath.Join(dir, "ingest", digestOf([]byte("recent")))
			os.WriteFile(recent, []byte("re"), 0o600)
			os.Chtimes(recent, clk.Now(), clk.Now())

			s = openT(t, dir, Options{Now: clk.Now})
			defer s.Close()
			checkConsistent(t, s)
			if _, err := os.Stat(s.BlobPath(stray)); !errors.Is(err, os.ErrNotExist) {
				t.Error("unreferenced blob file kept")
			}
			if s.HasBlob(orphan) {
				t.Error("old orphan blob kept")
			}
			if !s.HasBlob(young) {
				t.Error("young orphan blob dropped")
			}
			for id, want := range map[string][]string{"a": nil, "b": {"z"}, "c": {"w"}, "d": nil} {
				a, _ := s.Get(id)
				wantState := StateReady
				if want != nil {
					wantState = StateDamaged
				}
				if a.State != wantState || !slices.Equal(a.Damaged, want) {
					t.Errorf("%s: %s %v, want %s %v", id, a.State, a.Damaged, wantState, want)
				}
			}
			if s.Partial(partial) != 3 {
				t.Error("indexed partial dropped")
			}
			if _, err := os.Stat(oldIngest); !errors.Is(err, os.ErrNotExist) {
				t.Error("old stray ingest kept")
			}
			if _, err := os.Stat(recent); err != nil {
				t.Error("recent stray ingest dropped")
			}
			// The damaged blobs can come back.
			commitT(t, s, []byte("only b"))
			if err := s.SetState("b", StateReady, nil); err != nil {
				t.Fatal(err)
			}
			if d := s.CheckAvatar("b"); d != nil {
				t.Errorf("CheckAvatar after repair = %v", d)
			}
			checkConsistent(t, s)
		}},
		{"put collects the old version", func(t *testing.T, dir string) {
			s := openT(t, dir, Options{})
			defer s.Close()
			putT(t, s, "a", "1", map[string]string{"body": "v1 body", "head": "same head"})
			v2 := avatarT(t, s, "a", "2", map[string]string{"body": "v2 body", "head": "same head"})
			v2.Manifest.Assets = append(v2.Manifest.Assets, v2.Manifest.Assets[0])
			v2.Manifest.Assets[2].Path = "extra"
			v2.Manifest.Assets[2].SHA256 = digestOf([]byte("not committed"))
			if err := s.Put(v2); !errors.Is(err, errcode.FailedToDownloadAvatarAssets) {
				t.Fatalf("Put with a missing blob = %v", err)
			}
			if a, _ := s.Get("a"); a.Version != "1" || !s.HasBlob(digestOf([]byte("v1 body"))) {
				t.Fatal("failed Put changed the avatar")
			}
			v2.Manifest.Assets = v2.Manifest.Assets[:2]
			if err := s.Put(v2); err != nil {
				t.Fatal(err)
			}
			a, _ := s.Get("a")
			if a.Version != "2" || a.Size() != int64(len("v2 body")+len("same head")) {
				t.Fatalf("got %s size %d", a.Version, a.Size())
			}
			if s.HasBlob(digestOf([]byte("v1 body"))) || !s.HasBlob(digestOf([]byte("same head"))) {
				t.Fatal("old blob kept or shared blob dropped")
			}
			if _, err := os.Stat(s.BlobPath(digestOf([]byte("v1 body")))); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("old blob file kept")
			}
			checkConsistent(t, s)
		}},
		{"shared blobs are stored once and refcounted", func(t *testing.T, dir string) {
			s := openT(t, dir, Options{})
			defer s.Close()
			putT(t, s, "a", "1", map[string]string{"p": "shared", "q": "shared"})
			putT(t, s, "b", "1", map[string]string{"p": "shared"})
			d := digestOf([]byte("shared"))
			if r, _, _ := s.blobRecord(d); r.refs != 2 {
				t.Fatalf("refs = %d, want 2", r.refs)
			}
			if diff := cmp.Diff([]string{"a", "b"}, s.AvatarsUsing(d)); diff != "" {
				t.Fatal(diff)
			}
			st := s.Stats()
			if st.Blobs != 1 || st.TotalBytes != 6 || st.Entries != 2 {
				t.Fatalf("Stats = %+v", st)
			}
			checkConsistent(t, s)
		}},
		{"delete keeps shared blobs", func(t *testing.T, dir string) {
			s := openT(t, dir, Options{})
			defer s.Close()
			putT(t, s, "a", "1", map[string]string{"p": "shared", "q": "mine"})
			putT(t, s, "b", "1", map[string]string{"p": "shared"})
			if err := s.Delete("a"); err != nil {
				t.Fatal(err)
			}
			if !s.HasBlob(digestOf([]byte("shared"))) || s.HasBlob(digestOf([]byte("mine"))) {
				t.Fatal("wrong blobs kept")
			}
			if err := s.Delete("a"); !errors.Is(err, &errcode.Error{Code: errcode.AvatarAssetMissing, Reason: errcode.ReasonNotCached}) {
				t.Fatalf("Delete of unknown = %v", err)
			}
			checkConsistent(t, s)
			if err := s.DeleteAll(); err != nil {
				t.Fatal(err)
			}
			if len(blobFiles(t, s)) != 0 || len(s.List()) != 0 {
				t.Fatal("DeleteAll left something")
			}
			checkConsistent(t, s)
		}},
		{"quota eviction keeps pinned", func(t *testing.T, dir string) {
			clk := newClock()
			s := openT(t, dir, Options{Now: clk.Now, MaxBytes: 100})
			defer s.Close()
			for _, id := range []string{"pinned-old", "old", "mid", "new"} {
				putT(t, s, id, "1", map[string]string{"f": id + string(bytes.Repeat([]byte{'.'}, 20-len(id)))})
				clk.Advance(time.Minute)
			}
			s.SetPinned("pinned-old", true)
			s.Touch("mid") // now the most recent
			ev, err := s.EnsureSpace(50)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"old", "new"}, ev); diff != "" {
				t.Fatalf("evicted (-want +got):\n%s", diff)
			}
			if _, ok := s.Get("pinned-old"); !ok {
				t.Fatal("pinned evicted")
			}
			if st := s.Stats(); st.TotalBytes != 40 {
				t.Fatalf("TotalBytes = %d", st.TotalBytes)
			}
			if ev, err := s.EnsureSpace(60); err != nil || ev != nil {
				t.Fatalf("EnsureSpace when it fits = %v, %v", ev, err)
			}
			if ev, err := s.EnsureSpaceKeeping(70, "mid"); err == nil {
				t.Fatalf("EnsureSpaceKeeping evicted %v", ev)
			}
			checkConsistent(t, s)
		}},
		{"insufficient storage via FreeSpace", func(t *testing.T, dir string) {
			free := int64(1000)
			s := openT(t, dir, Options{ReserveBytes: 500, FreeSpace: func(string) (int64, error) { return free, nil }})
			defer s.Close()
			putT(t, s, "a", "1", map[string]string{"f": string(bytes.Repeat([]byte{'a'}, 100))})
			s.SetPinned("a", true)
			putT(t, s, "b", "1", map[string]string{"f": string(bytes.Repeat([]byte{'b'}, 100))})
			if ev, err := s.EnsureSpace(500); err != nil || ev != nil {
				t.Fatalf("EnsureSpace(500) = %v %v", ev, err)
			}
			_, err := s.EnsureSpace(700)
			want := &errcode.Error{Code: errcode.FailedToDownloadAvatarAssets, Reason: errcode.ReasonInsufficientStorage}
			if !errors.Is(err, want) || errs.From(err).Phase != errcode.PhaseStore {
				t.Fatalf("EnsureSpace(700) = %v", err)
			}
			if _, ok := s.Get("b"); !ok {
				t.Fatal("a failed EnsureSpace evicted")
			}
			if ev, err := s.EnsureSpace(600); err != nil || !slices.Equal(ev, []string{"b"}) {
				t.Fatalf("EnsureSpace(600) = %v %v", ev, err)
			}
		}},
		{"keep LRU", func(t *testing.T, dir string) {
			clk := newClock()
			s := openT(t, dir, Options{Now: clk.Now})
			defer s.Close()
			for _, id := range []string{"a", "b", "c", "d", "e"} {
				putT(t, s, id, "1", map[string]string{"f": id})
				clk.Advance(time.Second)
			}
			s.SetPinned("a", true)
			s.Touch("b")
			removed, err := s.KeepLRU(3)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"c", "d"}, removed); diff != "" {
				t.Fatalf("removed (-want +got):\n%s", diff)
			}
			removed, _ = s.KeepLRU(0)
			if diff := cmp.Diff([]string{"b", "e"}, removed); diff != "" {
				t.Fatalf("removed (-want +got):\n%s", diff)
			}
			checkConsistent(t, s)
		}},
		{"touch and flush persist", func(t *testing.T, dir string) {
			clk := newClock()
			s := openT(t, dir, Options{Now: clk.Now})
			putT(t, s, "a", "1", map[string]string{"f": "a"})
			putT(t, s, "b", "1", map[string]string{"f": "b"})
			clk.Advance(time.Hour)
			s.Touch("a")
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			clk.Advance(time.Hour)
			s.Touch("b")
			s.SetPinned("b", true) // the touch survives the entry's replacement
			s.Close()              // flushes b
			s = openT(t, dir, Options{Now: clk.Now})
			defer s.Close()
			a, _ := s.Get("a")
			b, _ := s.Get("b")
			start := newClock().Now()
			if !a.LastUsed.Equal(start.Add(time.Hour)) || !b.LastUsed.Equal(start.Add(2*time.Hour)) || !b.Pinned {
				t.Fatalf("a used %v, b used %v pinned %v", a.LastUsed, b.LastUsed, b.Pinned)
			}
		}},
		{"second open fails fast", func(t *testing.T, dir string) {
			s := openT(t, dir, Options{})
			defer s.Close()
			_, err := Open(dir, Options{LockTimeout: 20 * time.Millisecond})
			if !errors.Is(err, ErrInUse) || err.Error() != "store "+s.Dir()+" is in use by another assetd" {
				t.Fatalf("second Open = %v", err)
			}
		}},
		{"verify, check and remove damaged blobs", func(t *testing.T, dir string) {
			s := openT(t, dir, Options{})
			defer s.Close()
			putT(t, s, "a", "1", map[string]string{"good": "good bytes", "bad": "bad bytes"})
			good, bad := digestOf([]byte("good bytes")), digestOf([]byte("bad bytes"))
			if err := s.VerifyBlob(ctx, good); err != nil {
				t.Fatal(err)
			}
			p := s.BlobPath(bad)
			os.Chmod(p, 0o644)
			os.WriteFile(p, []byte("BAD bytes"), 0o444)
			if err := s.VerifyBlob(ctx, bad); !errors.Is(err, &errcode.Error{Code: errcode.AvatarAssetMissing, Reason: errcode.ReasonHashMismatch}) {
				t.Fatalf("VerifyBlob = %v", err)
			}
			os.WriteFile(p, []byte("bad"), 0o444)
			if err := s.VerifyBlob(ctx, bad); !errors.Is(err, &errcode.Error{Code: errcode.AvatarAssetMissing, Reason: errcode.ReasonSizeMismatch}) {
				t.Fatalf("VerifyBlob = %v", err)
			}
			if d := s.CheckAvatar("a"); !slices.Equal(d, []string{"bad"}) {
				t.Fatalf("CheckAvatar = %v", d)
			}
			if err := s.RemoveBlob(bad); err != nil {
				t.Fatal(err)
			}
			a, _ := s.Get("a")
			if a.State != StateDamaged || !slices.Equal(a.Damaged, []string{"bad"}) || s.HasBlob(bad) {
				t.Fatalf("after RemoveBlob: %s %v", a.State, a.Damaged)
			}
			if err := s.VerifyBlob(ctx, bad); !errors.Is(err, &errcode.Error{Code: errcode.AvatarAssetMissing, Reason: errcode.ReasonNotCached}) {
				t.Fatalf("VerifyBlob of a removed blob = %v", err)
			}
			checkConsistent(t, s)
			os.Remove(s.BlobPath(good))
			if err := s.VerifyBlob(ctx, good); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("VerifyBlob of a missing file = %v", err)
			}
		}},
		{"orphans and partials", func(t *testing.T, dir string) {
			clk := newClock()
			s := openT(t, dir, Options{Now: clk.Now, MaxBytes: 30})
			orphan := commitT(t, s, bytes.Repeat([]byte("o"), 20))
			if _, err := s.EnsureSpace(20); err == nil {
				t.Fatal("a young orphan was evicted")
			}
			clk.Advance(2 * orphanGrace)
			if ev, err := s.EnsureSpace(20); err != nil || ev != nil || s.HasBlob(orphan) {
				t.Fatalf("EnsureSpace = %v %v; orphan kept %v", ev, err, s.HasBlob(orphan))
			}
			// A partial longer than the blob restarts at 0.
			d := digestOf([]byte("abc"))
			w, _ := s.Ingest(ctx, d, 5)
			w.Write([]byte("abcde"))
			w.Close()
			w, _ = s.Ingest(ctx, d, 3)
			if w.Size() != 0 {
				t.Fatalf("resumed at %d past the size", w.Size())
			}
			w.Write([]byte("ab"))
			w.Close()
			// A partial whose file vanished is forgotten; a partial of a
			// committed blob goes.
			gone := digestOf([]byte("gone"))
			w, _ = s.Ingest(ctx, gone, 4)
			w.Close()
			s.Close()
			os.RemoveAll(filepath.Join(dir, "ingest", gone))
			os.WriteFile(filepath.Join(dir, "ingest", orphan), nil, 0o600) // not committed any more: kept if recent
			os.Chtimes(filepath.Join(dir, "ingest", orphan), clk.Now(), clk.Now())
			s = openT(t, dir, Options{Now: clk.Now})
			defer s.Close()
			if s.Partial(d) != 2 {
				t.Errorf("Partial = %d, want 2", s.Partial(d))
			}
			commitT(t, s, []byte("committed"))
			cd := digestOf([]byte("committed"))
			os.WriteFile(filepath.Join(dir, "ingest", cd), nil, 0o600)
			s.Close()
			s = openT(t, dir, Options{Now: clk.Now})
			defer s.Close()
			if _, err := os.Stat(filepath.Join(dir, "ingest", cd)); !errors.Is(err, os.ErrNotExist) {
				t.Error("partial of a committed blob kept")
			}
			checkConsistent(t, s)
		}},
		{"state, revalidation and stats", func(t *testing.T, dir string) {
			s := openT(t, dir, Options{MaxBytes: 1 << 20, ReserveBytes: 7})
			defer s.Close()
			putT(t, s, "a", "1", map[string]string{"f": "a"})
			if err := s.SetState("a", StateStale, []string{"ignored"}); err != nil {
				t.Fatal(err)
			}
			if st := s.Stats(); st.Stale != 1 || st.MaxBytes != 1<<20 || st.ReserveBytes != 7 || st.FreeBytes != 1<<40 {
				t.Fatalf("Stats = %+v", st)
			}
			at := time.Date(2026, 5, 5, 0, 0, 0, 0, time.UTC)
			if err := s.Revalidated("a", `"e2"`, time.Hour, at); err != nil {
				t.Fatal(err)
			}
			a, _ := s.Get("a")
			if a.State != StateReady || a.ETag != `"e2"` || a.MaxAge != time.Hour || !a.FetchedAt.Equal(at) || a.Damaged != nil {
				t.Fatalf("after Revalidated: %+v", a)
			}
			if err := s.SetPinned("nope", true); !errors.Is(err, errcode.AvatarAssetMissing) {
				t.Fatalf("SetPinned(unknown) = %v", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, t.TempDir()) })
	}
}
