package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/assetd/assetd/bench"
)

// writeCeilingList writes items as the ceiling's list: URL, size, sha256
// and destination, tab-separated, one a line.
func writeCeilingList(path, base string, items []bench.Item) error {
	var b strings.Builder
	for _, it := range items {
		fmt.Fprintf(&b, "%s\t%d\t%s\t%s\n", base+it.URLPath, it.Size, it.SHA256, it.Rel)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// ceilingMain is the ceiling: 4 workers that download, hash and write the
// files of the list, and nothing else (no retry, no resume, no index, no
// fsync unless -fsync).
func ceilingMain(args []string) int {
	fs := flag.NewFlagSet("ceiling", flag.ExitOnError)
	list := fs.String("list", "", "the list of files")
	dir := fs.String("dir", "", "where the files go")
	workers := fs.Int("workers", 4, "downloads at once")
	doSync := fs.Bool("fsync", false, "fsync each file before closing it")
	_ = fs.Parse(args)
	if err := ceiling(*list, *dir, *workers, *doSync); err != nil {
		fmt.Fprintln(os.Stderr, "ceiling:", err)
		return 1
	}
	return 0
}

type job struct {
	url, sha, rel string
	size          int64
}

func ceiling(list, dir string, workers int, doSync bool) error {
	jobs, err := readList(list)
	if err != nil {
		return err
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers, DisableCompression: true}}
	ch := make(chan job)
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			buf := make([]byte, 256<<10)
			for j := range ch {
				if err := fetchOne(hc, j, dir, buf, doSync); err != nil {
					errc <- err
					for range ch {
					}
					return
				}
			}
		})
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	close(errc)
	return <-errc
}

func readList(path string) ([]job, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var jobs []job
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.Split(sc.Text(), "\t")
		if len(p) != 4 {
			return nil, fmt.Errorf("%s: bad line %q", path, sc.Text())
		}
		n, err := strconv.ParseInt(p[1], 10, 64)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, job{url: p[0], size: n, sha: p[2], rel: p[3]})
	}
	return jobs, sc.Err()
}

func fetchOne(hc *http.Client, j job, dir string, buf []byte, doSync bool) error {
	resp, err := hc.Get(j.url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", j.url, resp.Status)
	}
	dst := filepath.Join(dir, filepath.FromSlash(j.rel))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(f, h), resp.Body, buf)
	if err == nil && doSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if n != j.size || hex.EncodeToString(h.Sum(nil)) != j.sha {
		return errors.New(j.rel + ": size or sha256 mismatch")
	}
	return nil
}
