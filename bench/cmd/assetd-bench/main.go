// Command assetd-bench is issue 8's whole-process benchmark, run by
// `make bench`: a cold `assetd preload` of 20 avatars of 8 MiB against
// aria2c, curl and a bare Go downloader (the ceiling), all fed by one
// static file server on loopback; the daemon's memory; a cached get over
// the socket against a bare net/http handler; serve start to a ready
// socket with 10,000 avatars indexed; a 1-of-5-files refresh; the binary's
// size; and issue 15's cold preloads of 2 MiB and 8 MiB file sets against
// the durable ceiling and aria2c. It writes a Markdown table of medians and ratios and prints it.
//
// `assetd-bench -only socket` runs only the cached GET over the socket
// against the bare handler, `-only idle` only the cold preloads' memory
// figures, `-only sets` only the file sets.
//
// `assetd-bench priority` runs only issue 15's priority scenario (an
// interactive load beside a background preload on a 20 MiB/s link) and
// prints its rows.
//
// The same binary is the ceiling downloader (`assetd-bench ceiling`) and
// the bare socket handler (`assetd-bench bare`), so that each contender is
// a process of its own.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

type options struct {
	assetd   string
	out      string
	gobench  string
	work     string
	keep     bool
	only     string
	rounds   int
	avatars  int
	idle     time.Duration
	idleCPU  time.Duration
	requests int
	trials   int
	clients  int
	indexed  int
	scale    int
}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "ceiling":
			os.Exit(ceilingMain(os.Args[2:]))
		case "bare":
			os.Exit(bareMain(os.Args[2:]))
		case "priority":
			os.Exit(priorityMain(os.Args[2:]))
		case "scale":
			os.Exit(scaleMain(os.Args[2:]))
		}
	}
	var o options
	flag.StringVar(&o.assetd, "assetd", "bin/assetd", "the assetd binary under test (make build)")
	flag.StringVar(&o.out, "out", "docs/performance.md", "where the Markdown report goes (\"\" = print only)")
	flag.StringVar(&o.gobench, "gobench", "", "output of the go benchmarks, appended to the report")
	flag.StringVar(&o.work, "work", "", "working directory (default: a new one under $TMPDIR, removed at exit)")
	flag.BoolVar(&o.keep, "keep", false, "keep the working directory")
	flag.StringVar(&o.only, "only", "", "run only one part and print its rows (no -out): \"sets\" (the cold preloads of the file sets), \"socket\" (the cached GET over the socket vs the bare handler, -trials each) or \"idle\" (-rounds cold preloads: peak RSS and RSS -idle later)")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds of each cold download contender")
	flag.IntVar(&o.avatars, "avatars", 20, "avatars in the origin")
	flag.DurationVar(&o.idle, "idle", 10*time.Second, "wait after the preload before the idle RSS")
	flag.DurationVar(&o.idleCPU, "idle-cpu", 30*time.Second, "window over which the idle daemon's CPU is measured")
	flag.IntVar(&o.requests, "requests", 20000, "requests per socket trial")
	flag.IntVar(&o.trials, "trials", 3, "trials of each socket server (the daemon's and the bare handler's), alternating")
	flag.IntVar(&o.clients, "clients", 32, "concurrent keep-alive clients of the socket")
	flag.IntVar(&o.indexed, "indexed", 10000, "avatars indexed for the start-to-ready figure")
	flag.IntVar(&o.scale, "scale", 100000, "avatars of the scale figures (start, memory, listing, gc, reconcile); 0 = skip them")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "assetd-bench:", err)
		os.Exit(1)
	}
}
