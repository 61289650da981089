package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// A manifest is decoded once, into a tree of JSON values, and both what
// the signature covers (the tree's canonical form) and the Manifest the
// caller uses are built from that one tree. A document that two JSON
// readers could read differently is refused: a name twice in one object
// (at any depth), nesting deeper than maxDepth, a number beyond a float64
// (the canonical form cannot write it), an integer member a float64 cannot
// hold exactly, anything after the value.

// maxDepth bounds the nesting of a manifest document: the protocol needs
// three levels (document, assets, asset); extensions get some room.
const maxDepth = 32

// maxExactInt is the largest integer every JSON reader (and the canonical
// form's float64) holds exactly: 2^53 (I-JSON, RFC 7493 §2.2).
const maxExactInt = 1 << 53

// errTrailing is data after the document's value.
var errTrailing = errors.New("data after its JSON value")

// DuplicateNameError is an object with a member name twice.
type DuplicateNameError struct {
	Name string // the repeated name
	Path string // where the object is, as a JSON pointer ("" for the document)
}

func (e *DuplicateNameError) Error() string {
	where := "the document"
	if e.Path != "" {
		where = e.Path
	}
	return fmt.Sprintf("member %q appears twice in %s", truncate(e.Name), where)
}

// decodeTree decodes the single JSON value of data: objects as
// map[string]any, arrays as []any, numbers as json.Number. A document cut
// short is io.ErrUnexpectedEOF; an empty one io.EOF.
func decodeTree(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec, "", 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errTrailing
	}
	return v, nil
}

func decodeValue(dec *json.Decoder, path string, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF && depth > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		if num, ok := tok.(json.Number); ok {
			if _, err := strconv.ParseFloat(string(num), 64); err != nil {
				return nil, fmt.Errorf("number %s at %s is beyond a float64", truncate(string(num)), path)
			}
		}
		return tok, nil // string, json.Number, bool or nil
	}
	if depth >= maxDepth {
		return nil, fmt.Errorf("nested deeper than %d levels at %s", maxDepth, path)
	}
	switch d {
	case '[':
		arr := []any{}
		for dec.More() {
			v, err := decodeValue(dec, path+"/"+strconv.Itoa(len(arr)), depth+1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		return arr, closing(dec)
	case '{':
		obj := map[string]any{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil, unexpectedEOF(err)
			}
			name, ok := tok.(string)
			if !ok {
				return nil, fmt.Errorf("object member name %v is not a string", tok)
			}
			if _, dup := obj[name]; dup {
				return nil, &DuplicateNameError{Name: name, Path: path}
			}
			v, err := decodeValue(dec, path+"/"+pointerEscape(name), depth+1)
			if err != nil {
				return nil, err
			}
			obj[name] = v
		}
		return obj, closing(dec)
	}
	return nil, fmt.Errorf("unexpected %v", d)
}

// closing reads the ']' or '}' that ends the array or object just read.
func closing(dec *json.Decoder) error {
	_, err := dec.Token()
	return unexpectedEOF(err)
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// pointerEscape is name as a JSON pointer token (RFC 6901), cut for messages.
func pointerEscape(name string) string {
	var b []byte
	for i := 0; i < len(name) && i < 64; i++ {
		switch name[i] {
		case '~':
			b = append(b, "~0"...)
		case '/':
			b = append(b, "~1"...)
		default:
			b = append(b, name[i])
		}
	}
	return string(b)
}

// fields reads the members of one JSON object into a Go value by exact
// name (encoding/json would also take "Assets" for "assets", a member the
// signature covers under another name). A null member is as if absent.
type fields struct {
	obj  map[string]any
	path string
	err  error
}

func (f *fields) fail(name, want string) {
	if f.err == nil {
		f.err = fmt.Errorf("%s/%s is not %s", f.path, name, want)
	}
}

func (f *fields) str(name string) string {
	v := f.obj[name]
	if v == nil {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		f.fail(name, "a string")
	}
	return s
}

func (f *fields) int(name string) int64 {
	v := f.obj[name]
	if v == nil {
		return 0
	}
	num, ok := v.(json.Number)
	if !ok {
		f.fail(name, "a number")
		return 0
	}
	n, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil || n > maxExactInt || n < -maxExactInt {
		f.fail(name, fmt.Sprintf("an integer within ±2^53 (%s)", truncate(string(num))))
		return 0
	}
	return n
}

func (f *fields) object(name string) *fields {
	v := f.obj[name]
	if v == nil {
		return nil
	}
	o, ok := v.(map[string]any)
	if !ok {
		f.fail(name, "an object")
		return nil
	}
	return &fields{obj: o, path: f.path + "/" + name}
}

func (f *fields) array(name string) []any {
	v := f.obj[name]
	if v == nil {
		return nil
	}
	a, ok := v.([]any)
	if !ok {
		f.fail(name, "an array")
	}
	return a
}

// fromTree builds the Manifest a decoded document holds. Members it does
// not know are ignored (they stay under the signature).
func fromTree(tree any) (*Manifest, error) {
	obj, ok := tree.(map[string]any)
	if !ok {
		return nil, errors.New("the document is not a JSON object")
	}
	f := &fields{obj: obj}
	m := &Manifest{
		Schema:   int(f.int("schema")),
		AvatarID: f.str("avatarId"),
		Version:  f.str("version"),
	}
	list := f.array("assets")
	if len(list) > MaxAssets {
		return nil, fmt.Errorf("manifest lists %d assets, more than %d", len(list), MaxAssets)
	}
	if list != nil {
		m.Assets = make([]Asset, len(list))
	}
	for i, v := range list {
		o, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("/assets/%d is not an object", i)
		}
		af := &fields{obj: o, path: "/assets/" + strconv.Itoa(i)}
		m.Assets[i] = Asset{Path: af.str("path"), Size: af.int("size"), SHA256: af.str("sha256"), URL: af.str("url")}
		if af.err != nil {
			return nil, af.err
		}
	}
	if sf := f.object("signature"); sf != nil {
		m.Signature = &Signature{KeyID: sf.str("keyId"), Ed25519: sf.str("ed25519")}
		if sf.err != nil {
			return nil, sf.err
		}
	}
	return m, f.err
}
