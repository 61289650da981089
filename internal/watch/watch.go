package watch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/assetd/assetd/internal/alive"
)

// Op is a set of things that happened to a path during one burst.
type Op uint32

const (
	Create Op = 1 << iota
	Write
	Remove
	Rename
	Chmod
	// Rescan says events were lost (the kernel queue overflowed): the
	// caller should look at everything under the Event's Path again.
	Rescan
)

// Has reports whether o includes every bit of x.
func (o Op) Has(x Op) bool { return o&x == x && x != 0 }

func (o Op) String() string {
	var parts []string
	for _, n := range []struct {
		op   Op
		name string
	}{{Create, "create"}, {Write, "write"}, {Remove, "remove"}, {Rename, "rename"}, {Chmod, "chmod"}, {Rescan, "rescan"}} {
		if o&n.op != 0 {
			parts = append(parts, n.name)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "|")
}

func fromFsnotify(op fsnotify.Op) Op {
	var o Op
	for _, m := range []struct {
		from fsnotify.Op
		to   Op
	}{{fsnotify.Create, Create}, {fsnotify.Write, Write}, {fsnotify.Remove, Remove}, {fsnotify.Rename, Rename}, {fsnotify.Chmod, Chmod}} {
		if op.Has(m.from) {
			o |= m.to
		}
	}
	return o
}

// Event is what happened to one file during a burst.
type Event struct {
	Path string // absolute
	Op   Op
}

// DefaultDebounce is the quiet time after the last event of a burst before
// the burst is reported.
const DefaultDebounce = 100 * time.Millisecond

// Options tune a Watcher.
type Options struct {
	// Debounce is the quiet time before a burst is reported; 0 means
	// DefaultDebounce. A burst that never goes quiet is reported after ten
	// times Debounce.
	Debounce time.Duration
	Logger   *slog.Logger // nil = no logs
	// Alive beats while Run's loop turns (the daemon's watchdog); nil =
	// none. The callbacks run on that loop: a slow one delays the beat.
	Alive *alive.Loop
}

// Watcher reports changes; see New and NewTree.
type Watcher struct {
	fs       *fsnotify.Watcher
	debounce time.Duration
	log      *slog.Logger

	// New: the files, by directory, and what each looked like last.
	files    map[string][]*file
	onChange func(path string)

	// NewTree: the root and the directories under watch.
	root    string
	dirs    map[string]bool
	onEvent func(Event)

	// A burst in progress.
	touched  map[string]bool // New: directories with events
	named    map[string]bool // New: watched files an event named
	pending  map[string]Op   // NewTree: ops by path
	overflow bool

	alive *alive.Loop

	// Pause and Resume (NewTree): the state asked for, and a wake-up
	// for Run's loop, which alone adds and removes watches.
	pmu      sync.Mutex
	pauseSet bool
	pauseReq chan struct{}
	paused   bool // the tree's watches are removed (set by Run's loop, under pmu)

	runOnce   sync.Once
	closeOnce sync.Once
	closeErr  error
}

type file struct {
	path string
	last fs.FileInfo // nil when the file did not exist
}

// New watches files and calls onChange with a file's path (absolute, as
// cleaned) after it changed: rewritten in place, replaced by rename or by a
// symlink swap, deleted, created, or chmodded. The directory of each file
// must exist; the file need not.
func New(files []string, onChange func(path string), opts Options) (*Watcher, error) {
	w, err := newWatcher(opts)
	if err != nil {
		return nil, err
	}
	w.files, w.onChange = map[string][]*file{}, onChange
	w.touched, w.named = map[string]bool{}, map[string]bool{}
	for _, p := range files {
		abs, err := filepath.Abs(p)
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("watch %s: %w", p, err)
		}
		dir := filepath.Dir(abs)
		if _, ok := w.files[dir]; !ok {
			if err := w.fs.Add(dir); err != nil {
				w.Close()
				return nil, fmt.Errorf("watch %s: %w", dir, err)
			}
		}
		w.files[dir] = append(w.files[dir], &file{path: abs, last: stat(abs)})
	}
	return w, nil
}

// NewTree watches every file under root, in subdirectories too (also ones
// created later), and calls onEvent for each file that an event named.
// Directories are followed, not reported. After lost events onEvent gets
// {root, Rescan}, and the removals of that burst are not reported one by
// one: a rescan finds what is missing, and they are what overflows the
// kernel's queue (a store removing 300,000 files), each costing the
// callback a lookup.
func NewTree(root string, onEvent func(Event), opts Options) (*Watcher, error) {
	w, err := newWatcher(opts)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("watch %s: %w", root, err)
	}
	w.root, w.dirs, w.onEvent, w.pending = abs, map[string]bool{}, onEvent, map[string]Op{}
	if err := w.addTree(abs, false); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

func newWatcher(opts Options) (*Watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	w := &Watcher{fs: fw, debounce: opts.Debounce, log: opts.Logger, alive: opts.Alive, pauseReq: make(chan struct{}, 1)}
	if w.debounce <= 0 {
		w.debounce = DefaultDebounce
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	return w, nil
}

// addTree watches dir and the directories under it. With report, the files
// found are pending as created: they appeared before their directory was
// watched.
func (w *Watcher) addTree(dir string, report bool) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir && !report {
				return fmt.Errorf("watch %s: %w", p, err)
			}
			return nil // gone already: its Remove event follows
		}
		if !d.IsDir() {
			if report {
				w.pending[p] |= Create
			}
			return nil
		}
		if err := w.fs.Add(p); err != nil {
			if p == dir && !report {
				return fmt.Errorf("watch %s: %w", p, err)
			}
			w.log.Warn("cannot watch a directory", "dir", p, "err", err)
			return nil
		}
		w.dirs[p] = true
		return nil
	})
}

// Close releases the watcher. Run closes it on return; Close is for a
// Watcher that is never run. It is safe to call more than once.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() { w.closeErr = w.fs.Close() })
	return w.closeErr
}

// Run reports changes until ctx ends, then closes the watcher and returns
// nil. The callbacks run on Run's goroutine, one at a time; a slow callback
// delays later reports but loses none (up to the kernel's queue). Run may be
// called once.
func (w *Watcher) Run(ctx context.Context) error {
	first := false
	w.runOnce.Do(func() { first = true })
	if !first {
		return errors.New("watch: Run called twice")
	}
	defer w.Close()

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var burstStart time.Time
	arm := func() {
		now := time.Now()
		if burstStart.IsZero() {
			burstStart = now
		}
		wait := w.debounce
		if limit := burstStart.Add(10 * w.debounce).Sub(now); limit < wait {
			wait = max(limit, 0)
		}
		timer.Reset(wait)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.alive.C():
			w.alive.Beat()
		case ev, ok := <-w.fs.Events:
			if !ok {
				return errors.New("watch: the watcher closed")
			}
			if w.note(ev) {
				arm()
			}
		case err, ok := <-w.fs.Errors:
			if !ok {
				return errors.New("watch: the watcher closed")
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				w.log.Warn("file events were lost; rescanning", "err", err)
				w.overflow = true
				arm()
				continue
			}
			w.log.Warn("file watch error", "err", err)
		case <-w.pauseReq:
			if w.setPaused() {
				arm() // resumed: report the Rescan
			}
		case <-timer.C:
			burstStart = time.Time{}
			w.flush()
		}
	}
}

// Pause stops watching the tree (NewTree) until Resume: for a burst of
// changes the caller makes itself and needs no report of (a store
// removing 300,000 files: each event costs the kernel, Run and the
// callback, and they overflow the queue anyway). Resume watches the tree
// again and reports {root, Rescan}: whatever changed meanwhile is to be
// found by a rescan. Both return at once; Run's loop acts on the last
// asked for. On a Watcher from New they do nothing.
func (w *Watcher) Pause() { w.askPaused(true) }

// Resume ends a Pause; see Pause.
func (w *Watcher) Resume() { w.askPaused(false) }

func (w *Watcher) askPaused(p bool) {
	if w.onEvent == nil {
		return
	}
	w.pmu.Lock()
	w.pauseSet = p
	w.pmu.Unlock()
	select {
	case w.pauseReq <- struct{}{}:
	default: // a wake-up is pending; it reads pauseSet
	}
}

// Paused reports whether Run has acted on a Pause not yet resumed: the
// tree's watches are removed.
func (w *Watcher) Paused() bool {
	w.pmu.Lock()
	defer w.pmu.Unlock()
	return w.paused
}

// setPaused brings the tree's watches to the state asked for; it reports
// whether it resumed them.
func (w *Watcher) setPaused() (resumed bool) {
	w.pmu.Lock()
	want, paused := w.pauseSet, w.paused
	w.pmu.Unlock()
	set := func(p bool) {
		w.pmu.Lock()
		w.paused = p
		w.pmu.Unlock()
	}
	switch {
	case want && !paused:
		for dir := range w.dirs {
			_ = w.fs.Remove(dir) // gone already: nothing to remove
		}
		clear(w.dirs)
		set(true)
		return false
	case !want && paused:
		set(false)
		if err := w.addTree(w.root, false); err != nil {
			w.log.Warn("cannot watch the tree again after a pause", "dir", w.root, "err", err)
		}
		w.overflow = true // what changed meanwhile goes unreported: rescan
		return true
	}
	return false
}

// note records one event; it reports whether the event matters.
func (w *Watcher) note(ev fsnotify.Event) bool {
	if w.onEvent != nil {
		return w.noteTree(ev)
	}
	dir := filepath.Dir(ev.Name)
	files, ok := w.files[dir]
	if !ok {
		if _, self := w.files[ev.Name]; self && ev.Has(fsnotify.Remove|fsnotify.Rename) {
			w.log.Warn("a watched directory went away; its files are no longer watched", "dir", ev.Name)
		}
		return false
	}
	w.touched[dir] = true
	for _, f := range files {
		if f.path == ev.Name {
			w.named[f.path] = true
		}
	}
	return true
}

func (w *Watcher) noteTree(ev fsnotify.Event) bool {
	op := fromFsnotify(ev.Op)
	if w.dirs[ev.Name] {
		if op&(Remove|Rename) != 0 {
			delete(w.dirs, ev.Name) // inotify dropped or will drop its watch
		}
		return false
	}
	if op&Create != 0 {
		if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
			if err := w.addTree(ev.Name, true); err != nil {
				w.log.Warn("cannot watch a new directory", "dir", ev.Name, "err", err)
			}
			return len(w.pending) > 0
		}
	}
	if op == 0 {
		return false
	}
	if w.overflow && removal(op) {
		return true // the burst's Rescan reports it
	}
	w.pending[ev.Name] |= op
	return true
}

// removal reports whether op is only a file going away.
func removal(op Op) bool { return op&^(Remove|Rename) == 0 }

// flush reports the burst that just settled.
func (w *Watcher) flush() {
	overflow := w.overflow
	w.overflow = false
	if w.onEvent != nil {
		w.flushTree(overflow)
		return
	}
	var changed []string
	for dir, files := range w.files {
		if !overflow && !w.touched[dir] {
			continue
		}
		for _, f := range files {
			now := stat(f.path)
			if overflow || w.named[f.path] || !same(f.last, now) {
				changed = append(changed, f.path)
			}
			f.last = now
		}
	}
	clear(w.touched)
	clear(w.named)
	slices.Sort(changed)
	for _, p := range changed {
		w.onChange(p)
	}
}

func (w *Watcher) flushTree(overflow bool) {
	events := make([]Event, 0, len(w.pending)+1)
	for p, op := range w.pending {
		if overflow && removal(op) {
			continue // the Rescan reports it
		}
		events = append(events, Event{Path: p, Op: op})
	}
	clear(w.pending)
	slices.SortFunc(events, func(a, b Event) int { return strings.Compare(a.Path, b.Path) })
	if overflow {
		events = append(events, Event{Path: w.root, Op: Rescan})
	}
	for _, e := range events {
		w.onEvent(e)
	}
}

// stat describes the file at p through symlinks; nil when there is none.
func stat(p string) fs.FileInfo {
	fi, err := os.Stat(p)
	if err != nil {
		return nil
	}
	return fi
}

// same reports whether a and b describe one unchanged file.
func same(a, b fs.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime()) && a.Mode() == b.Mode()
}
