package reliability

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// table is one section of the report: a title, column headers and rows,
// each row ending with the test's verdict.
type table struct {
	title string
	head  []string

	mu   sync.Mutex
	rows map[string][]string // by test name
}

var (
	tablesMu sync.Mutex
	tables   []*table
	notes    []string
)

// The report's sections, in order.
var (
	faultTable = newTable("Fault origin (in-process store + fetch + manager; max_retries 2, retry waits 1-10 ms)",
		"fault", "result", "origin requests (manifest/blob)")
	crashTable = newTable("Crash harness (real binary, SIGKILL at random moments while preloading)",
		"load applied", "what happened")
	diskTable = newTable("Disk", "load applied", "what happened")
	loadTable = newTable("Load (concurrent clients of the socket while downloads run)", "load applied", "what happened")
	secTable  = newTable("Security", "what was tried", "what happened")
)

// newTable returns the table of that title, made on first use.
func newTable(title string, head ...string) *table {
	tablesMu.Lock()
	defer tablesMu.Unlock()
	for _, tb := range tables {
		if tb.title == title {
			return tb
		}
	}
	tb := &table{title: title, head: head, rows: map[string][]string{}}
	tables = append(tables, tb)
	return tb
}

// add records a row for t; its verdict is settled when t ends.
func (tb *table) add(t *testing.T, cells ...string) {
	name := t.Name()
	t.Cleanup(func() {
		verdict := "pass"
		switch {
		case t.Failed():
			verdict = "**FAIL**"
		case t.Skipped():
			verdict = "skipped"
		}
		tb.mu.Lock()
		tb.rows[name] = append(append([]string{}, cells...), verdict)
		tb.mu.Unlock()
	})
}

// note adds a line under the tables.
func note(format string, args ...any) {
	tablesMu.Lock()
	notes = append(notes, fmt.Sprintf(format, args...))
	tablesMu.Unlock()
}

func writeReport(path string) error {
	var b strings.Builder
	b.WriteString("# Reliability and security figures\n\n")
	b.WriteString("Written by `make reliability` (reliability/*_test.go with -reliability.full); `make test`\n")
	b.WriteString("runs the same tests in short form (5 crash rounds, 50 clients for 3 s). Every test runs the\n")
	b.WriteString("real code: the fault table drives store + fetch + manager in-process against a fault-injecting\n")
	b.WriteString("origin; the crash, disk, load and security tests run the `assetd` binary. No figure here is\n")
	b.WriteString("asserted as a speed.\n\n")
	fmt.Fprintf(&b, "Machine: %s, %d cores (GOMAXPROCS %d), %s/%s, %s, kernel %s. Commit %s. Run at %s.\n\n",
		cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version(),
		kernel(), commit(), time.Now().UTC().Format(time.RFC3339))
	tablesMu.Lock()
	defer tablesMu.Unlock()
	for _, tb := range tables {
		tb.mu.Lock()
		if len(tb.rows) == 0 {
			tb.mu.Unlock()
			continue
		}
		fmt.Fprintf(&b, "## %s\n\n", tb.title)
		head := append([]string{"test"}, tb.head...)
		head = append(head, "verdict")
		b.WriteString("| " + strings.Join(head, " | ") + " |\n")
		b.WriteString(strings.Repeat("|---", len(head)) + "|\n")
		names := make([]string, 0, len(tb.rows))
		for n := range tb.rows {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			cells := append([]string{"`" + n + "`"}, tb.rows[n]...)
			for i, c := range cells {
				cells[i] = strings.ReplaceAll(c, "|", "\\|")
			}
			b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
		}
		b.WriteString("\n")
		tb.mu.Unlock()
	}
	if len(notes) > 0 {
		b.WriteString("## Notes\n\n")
		for _, n := range notes {
			b.WriteString("- " + n + "\n")
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// commit names the source the run tested.
func commit() string {
	out, err := exec.Command("git", "-C", "..", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
