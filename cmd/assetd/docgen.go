//go:build docgen

// The docgen command is built only with -tags docgen (make deb does): its
// man page generator (cobra/doc, go-md2man, blackfriday) would add 350 KB
// to every binary on the devices, which never run it.

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/assetd/assetd/internal/version"
)

func init() { register(newDocgenCmd) }

// newDocgenCmd writes what the packages ship beside the binary: a man page
// per command and the bash, zsh and fish completions (cobra's own
// `assetd completion SHELL`). It is hidden: only the build runs it.
func newDocgenCmd(*globals) *cobra.Command {
	return &cobra.Command{
		Use:    "docgen DIR",
		Short:  "Write the man pages (DIR/man) and shell completions (DIR/completions)",
		Hidden: true,
		Args:   usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return writeDocs(cmd.Root(), args[0])
		},
	}
}

// Completion file names, as bash-completion, zsh and fish look them up.
var completionFiles = map[string]string{
	"bash": "assetd",
	"zsh":  "_assetd",
	"fish": "assetd.fish",
}

func writeDocs(root *cobra.Command, dir string) error {
	// The pages must not depend on who builds them: the default socket,
	// not $ASSETD_SOCKET, and the commit's date, not the clock.
	if f := root.PersistentFlags().Lookup("socket"); f != nil {
		f.DefValue = DefaultSocket
	}
	root.InitDefaultCompletionCmd()
	disableAutoGenTag(root)
	man := filepath.Join(dir, "man")
	if err := os.MkdirAll(man, 0o755); err != nil {
		return err
	}
	header := &doc.GenManHeader{
		Title:   "ASSETD",
		Section: "1",
		Source:  "assetd " + version.Version,
		Manual:  "assetd manual",
	}
	if d, err := time.Parse(time.RFC3339, version.Date); err == nil {
		d = d.UTC()
		header.Date = &d
	}
	if err := doc.GenManTree(root, header, man); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	if err := addManSections(man); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	date := time.Now()
	if header.Date != nil { // cobra/doc filled it from SOURCE_DATE_EPOCH when unset
		date = *header.Date
	}
	if err := writeConfigPage(filepath.Join(man, "assetd.toml.5"), date.UTC()); err != nil {
		return fmt.Errorf("assetd.toml(5): %w", err)
	}
	comp := filepath.Join(dir, "completions")
	if err := os.MkdirAll(comp, 0o755); err != nil {
		return err
	}
	for shell, name := range completionFiles {
		if err := writeCompletion(root, shell, filepath.Join(comp, name)); err != nil {
			return fmt.Errorf("%s completion: %w", shell, err)
		}
	}
	return nil
}

func writeCompletion(root *cobra.Command, shell, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	switch shell {
	case "bash":
		err = root.GenBashCompletionV2(f, true)
	case "zsh":
		err = root.GenZshCompletion(f)
	case "fish":
		err = root.GenFishCompletion(f, true)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func disableAutoGenTag(c *cobra.Command) {
	c.DisableAutoGenTag = true
	for _, sub := range c.Commands() {
		disableAutoGenTag(sub)
	}
}
