// Command mkdeb builds assetd's Debian packages from the static binaries of
// `make dist`, one per binary, its architecture read from the ELF header:
//
//	mkdeb -version $(git describe --tags --always --dirty) -docs DIR -out DIR BINARY...
//
// SOURCE_DATE_EPOCH (the commit's date) dates every file and, for an
// untagged commit, the version.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/assetd/assetd/packaging"
)

func main() {
	version := flag.String("version", "", "the version, as git describe --tags --always --dirty prints it")
	maintainer := flag.String("maintainer", "assetd developers <assetd@users.noreply.github.com>", "the Maintainer field")
	repo := flag.String("repo", ".", "the repository root (systemd/, configs/)")
	docs := flag.String("docs", "", "the output of assetd docgen (man/, completions/)")
	out := flag.String("out", ".", "where the packages go")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: mkdeb -version V -docs DIR [-out DIR] BINARY...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *version == "" || *docs == "" || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	epoch, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mkdeb: SOURCE_DATE_EPOCH must be the commit's date in seconds since 1970 (git log -1 --format=%%ct)\n")
		os.Exit(2)
	}
	date := time.Unix(epoch, 0).UTC()
	debVersion, err := packaging.DebVersion(*version, date)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	for _, bin := range flag.Args() {
		p := packaging.Package{Version: debVersion, Maintainer: *maintainer, Epoch: date}
		deb, err := packaging.Build(ctx, p, packaging.Sources{Binary: bin, Repo: *repo, Docs: *docs}, *out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mkdeb:", err)
			os.Exit(1)
		}
		fmt.Println(deb)
	}
}
