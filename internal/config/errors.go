package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// Error is one problem with the configuration. Load returns one *Error, or
// several joined with errors.Join (errors.As finds the first).
type Error struct {
	File string // the file, or "$ASSETD_SOCKET" and the like for the environment
	Line int    // 1-based; 0 when the problem has no line
	Key  string // dotted key, "fetch.concurrency"; "" for the whole file
	Msg  string
}

// Error reads "FILE:LINE: key KEY: MSG".
func (e *Error) Error() string {
	var b strings.Builder
	if e.File == "" {
		b.WriteString("configuration")
	} else {
		b.WriteString(e.File)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		fmt.Fprintf(&b, "key %s: ", e.Key)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// joinErrors orders problems by line and joins them; nil when there are none.
func joinErrors(list []*Error) error {
	switch len(list) {
	case 0:
		return nil
	case 1:
		return list[0]
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].Line < list[j].Line })
	errs := make([]error, len(list))
	for i, e := range list {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// decodeError turns go-toml's errors into *Error values.
func decodeError(file string, data []byte, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var list []*Error
		for i := range strict.Errors {
			de := &strict.Errors[i]
			line, _ := de.Position()
			key := strings.Join(de.Key(), ".")
			msg := "unknown key"
			if strings.Contains(de.Error(), "table") {
				msg = "unknown table"
			}
			if s := suggest(key); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			}
			list = append(list, &Error{File: file, Line: line, Key: key, Msg: msg})
		}
		return joinErrors(list)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, _ := de.Position()
		key := qualify(data, line, strings.Join(de.Key(), "."))
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if strings.HasSuffix(msg, "is already defined") {
			msg = "is set more than once"
		}
		if t, ok := keyTypes()[key]; ok {
			switch {
			case strings.HasPrefix(msg, "cannot decode TOML"):
				msg = "must be " + describe(t)
			case strings.Contains(msg, "cannot be stored in"):
				msg = "must be " + describe(t) + " (" + msg + ")"
			}
		}
		return &Error{File: file, Line: line, Key: key, Msg: msg}
	}
	return &Error{File: file, Msg: err.Error()}
}

// suggest returns the known key closest to an unknown one, if close enough.
func suggest(key string) string {
	best, bestD := "", 4
	for k := range keyTypes() {
		if d := distance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
