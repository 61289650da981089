package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/assetd/assetd/internal/dirent"
)

// gcTrial is `assetd gc --keep 1000` on one file system, beside the same
// removal by a bare program.
type gcTrial struct {
	fs      string  // the file system, described
	gc      float64 // s, the gc command to the daemon idle again
	command float64 // s, the command alone
	floor   float64 // s, a bare program's unlink of the files the gc removes
}

// bareRemoval is the floor of a gc's removal: unlinkat of names in dir,
// in inode order (one read of the directory, which is timed), by
// maxRemovers workers each taking a run, as the store's remover does and
// with nothing else: no index, no locks, no watcher.
func bareRemoval(ctx context.Context, dir string, names []string) (time.Duration, error) {
	const workers = 8
	start := time.Now()
	f, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fd := int(f.Fd())
	names = dirent.InodeOrder(fd, names, ctx.Done())
	run := (len(names) + workers - 1) / workers
	var g errgroup.Group
	for w := range workers {
		part := names[min(w*run, len(names)):min((w+1)*run, len(names))]
		g.Go(func() error {
			for _, name := range part {
				if err := syscall.Unlinkat(fd, name); err != nil {
					return fmt.Errorf("unlink %s: %w", name, err)
				}
			}
			return ctx.Err()
		})
	}
	err = g.Wait()
	return time.Since(start), err
}

// ext4Image makes and mounts, in work, a fresh 64 GiB ext4 (a sparse
// image), as mkfs.ext4 makes it for a device of that size (only the inode
// count set, for the store's copies: a journal of its default size, 512
// MiB), mounted without discard as a device's root is: what a gc's
// removal costs depends on the file system (this machine's may have no
// journal, or trim each freed block as it frees it; a small journal fills
// and waits for its checkpoints: on an 8 GiB ext4, 64 MiB of journal, the
// bare removal took 4.7 s instead of 3.8 s). It needs root, mkfs.ext4 and
// a loop device; why not is said in the error. desc says what it is;
// unmount unmounts it and removes the image.
func ext4Image(ctx context.Context, work string) (dir, desc string, unmount func(), err error) {
	if os.Geteuid() != 0 {
		return "", "", nil, fmt.Errorf("not root: no loop device to mount")
	}
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		return "", "", nil, err
	}
	img, dir := filepath.Join(work, "ext4.img"), filepath.Join(work, "ext4")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", "", nil, err
	}
	// The inode tables and journal written now, not by the kernel's lazy
	// init in the middle of the figures.
	if out, err := exec.CommandContext(ctx, mkfs, "-q", "-F", "-N", "1000000", "-E", "lazy_itable_init=0,lazy_journal_init=0", img, "64G").CombinedOutput(); err != nil {
		os.Remove(img)
		return "", "", nil, fmt.Errorf("mkfs.ext4: %w: %s", err, strings.TrimSpace(string(out)))
	}
	if out, err := exec.CommandContext(ctx, "mount", "-o", "loop", img, dir).CombinedOutput(); err != nil {
		os.Remove(img)
		return "", "", nil, fmt.Errorf("mount -o loop: %w: %s", err, strings.TrimSpace(string(out)))
	}
	desc = "a fresh 64 GiB ext4 as mkfs.ext4 makes it for a device"
	if out, err := exec.CommandContext(ctx, "dumpe2fs", "-h", img).Output(); err == nil {
		for line := range strings.Lines(string(out)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Total journal size") {
				desc += " (its journal " + strings.TrimSpace(v) + ")"
			}
		}
	}
	return dir, desc, func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "umount %s: %v: %s\n", dir, err, out)
			exec.Command("umount", "-l", dir).Run()
		}
		os.Remove(img)
	}, nil
}

// describeFS says what file system path is on: its type, for ext4
// whether it has a journal (/proc/fs/jbd2), and whether it is mounted
// discard (each freed block trimmed, synchronously where there is no
// journal to batch the trims at its commits).
func describeFS(path string) string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	var point, fstype, source, opts string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 6 || len(fields) < sep+4 {
			continue
		}
		p := fields[4]
		if (path == p || strings.HasPrefix(path, strings.TrimSuffix(p, "/")+"/")) && len(p) >= len(point) {
			point, fstype, source, opts = p, fields[sep+1], fields[sep+2], fields[5]+","+fields[sep+3]
		}
	}
	if point == "" {
		return "unknown"
	}
	var b strings.Builder
	b.WriteString(fstype)
	if fstype == "ext4" {
		if _, err := os.Stat(filepath.Join("/proc/fs/jbd2", filepath.Base(source)+"-8")); err == nil {
			b.WriteString(" with a journal")
		} else {
			b.WriteString(" without a journal")
		}
	}
	if strings.Contains(","+opts+",", ",discard,") {
		b.WriteString(", mounted discard")
	} else {
		b.WriteString(", mounted without discard")
	}
	fmt.Fprintf(&b, " (%s)", source)
	return b.String()
}
