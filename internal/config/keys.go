package config

import (
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/pelletier/go-toml/v2/unstable"
)

// keyTypes maps every dotted key of Config ("fetch.concurrency") to its Go
// type, read from the toml tags.
var keyTypes = sync.OnceValue(func() map[string]reflect.Type {
	m := map[string]reflect.Type{}
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if name == "" || name == "-" {
				continue
			}
			if f.Type.Kind() == reflect.Struct {
				walk(prefix+name+".", f.Type)
				continue
			}
			m[prefix+name] = f.Type
		}
	}
	walk("", reflect.TypeOf(Config{}))
	return m
})

// Keys returns every dotted key a configuration file may set.
func Keys() []string {
	keys := make([]string, 0, len(keyTypes()))
	for k := range keyTypes() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

var (
	durationType = reflect.TypeOf(Duration(0))
	sizeType     = reflect.TypeOf(Size(0))
	modeType     = reflect.TypeOf(Mode(0))
)

// describe says what a value of type t is written as, for error messages.
func describe(t reflect.Type) string {
	switch t {
	case durationType:
		return `a duration string like "30s"`
	case sizeType:
		return `a size like "4GiB" or a number of bytes`
	case modeType:
		return `an octal mode string like "0660"`
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return "an array of strings"
		}
		return "an array of non-negative integers"
	}
	return t.String()
}

// keyPos is where a key is set in a document.
type keyPos struct {
	line int
	kind unstable.Kind // of the value
}

// keyIndex maps dotted keys, and table names, to where the document sets
// them. A nil keyIndex knows nothing (the defaults).
type keyIndex map[string]keyPos

// indexKeys walks a document that go-toml already accepted. It finds keys
// however they are written: in a [table], dotted, or in an inline table.
func indexKeys(doc []byte) keyIndex {
	idx := keyIndex{}
	var p unstable.Parser
	p.Reset(doc)
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = keyParts(e.Key())
			if it := e.Key(); it.Next() {
				idx.add(table, keyPos{line: line(&p, it.Node())})
			}
		case unstable.KeyValue:
			idx.addKeyValue(&p, table, e)
		}
	}
	return idx
}

func (idx keyIndex) addKeyValue(p *unstable.Parser, table []string, e *unstable.Node) {
	key := append(append([]string(nil), table...), keyParts(e.Key())...)
	it := e.Key()
	if !it.Next() {
		return
	}
	v := e.Value()
	idx.add(key, keyPos{line: line(p, it.Node()), kind: v.Kind})
	if v.Kind == unstable.InlineTable {
		children := v.Children()
		for children.Next() {
			if c := children.Node(); c.Kind == unstable.KeyValue {
				idx.addKeyValue(p, key, c)
			}
		}
	}
}

func (idx keyIndex) add(key []string, pos keyPos) {
	k := strings.Join(key, ".")
	if _, ok := idx[k]; !ok {
		idx[k] = pos
	}
}

func keyParts(it unstable.Iterator) []string {
	var parts []string
	for it.Next() {
		parts = append(parts, string(it.Node().Data))
	}
	return parts
}

func line(p *unstable.Parser, n *unstable.Node) int {
	return p.Shape(n.Raw).Start.Line
}

// line returns the line that sets key, else the line of its table, else 0.
func (idx keyIndex) line(key string) int {
	for k := key; k != ""; {
		if pos, ok := idx[k]; ok {
			return pos.line
		}
		i := strings.LastIndexByte(k, '.')
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0
}

// checkDurations refuses a duration written as a bare number: 30 would
// decode as 30 nanoseconds.
func (idx keyIndex) checkDurations(file string) error {
	var list []*Error
	for key, t := range keyTypes() {
		if pos, ok := idx[key]; ok && t == durationType && pos.kind != unstable.String {
			list = append(list, &Error{File: file, Line: pos.line, Key: key,
				Msg: `must be ` + describe(t) + ` (a bare number has no unit)`})
		}
	}
	return joinErrors(list)
}

// qualify prefixes key with the [table] in effect at line, when go-toml
// reported it relative to that table (as it does for duplicate keys).
func qualify(doc []byte, line int, key string) string {
	if key == "" || line == 0 {
		return key
	}
	var p unstable.Parser
	p.Reset(doc)
	var table string
	for p.NextExpression() {
		e := p.Expression()
		if e.Kind != unstable.Table && e.Kind != unstable.ArrayTable {
			continue
		}
		it := e.Key()
		if !it.Next() || p.Shape(it.Node().Raw).Start.Line > line {
			break
		}
		table = strings.Join(keyParts(e.Key()), ".")
	}
	if table == "" || key == table || strings.HasPrefix(key, table+".") {
		return key
	}
	return table + "." + key
}
