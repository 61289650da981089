package testkit

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Status reads a field of /proc/PID/status in KiB (VmRSS, VmHWM); -1 when
// it cannot be read.
func Status(pid int, field string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == field {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return -1
}

// FDCount is the number of open descriptors of a process, -1 if unknown.
func FDCount(pid int) int {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// UnixFDs is the number of a process's descriptors that are Unix sockets
// (the API's listener and its client connections), found by matching the
// fd links' inodes against /proc/net/unix.
func UnixFDs(pid int) int {
	table, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		return -1
	}
	inodes := map[string]bool{}
	for _, l := range strings.Split(string(table), "\n")[1:] {
		if f := strings.Fields(l); len(f) >= 7 {
			inodes[f[6]] = true
		}
	}
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return -1
	}
	n := 0
	for _, e := range ents {
		link, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") && inodes[strings.Trim(link[len("socket:"):], "[]")] {
			n++
		}
	}
	return n
}

// SamplePeakRSS samples a process's VmRSS every interval on a goroutine of
// its own; the returned stop ends the sampling, waits for it and returns
// the largest sample in KiB.
func SamplePeakRSS(pid int, every time.Duration) (stop func() int64) {
	var peak int64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			peak = max(peak, Status(pid, "VmRSS"))
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		<-sampled
		return peak
	}
}
