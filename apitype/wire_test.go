package apitype_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
)

var update = flag.Bool("update", false, "rewrite "+wireFile+" from the Go shapes")

// wireFile is the wire fixture the Python and Node clients decode in their
// tests (clients/README.md): a change of a shape here that is not
// regenerated fails this test, and once regenerated fails theirs until
// they learn it.
const wireFile = "../clients/fixtures/wire.json"

// wire is the fixture's layout.
type wire struct {
	Comment    string                     `json:"comment"`
	Shapes     map[string]json.RawMessage `json:"shapes"`
	ErrorCodes []wireCode                 `json:"errorCodes"`
	States     []apitype.State            `json:"states"`
	EventTypes []string                   `json:"eventTypes"`
	Waiting    []string                   `json:"waiting"`
}

type wireCode struct {
	Code        errcode.Code `json:"code"`
	SDK         bool         `json:"sdk"` // one of the AvatarKit SDKs' own codes
	Description string       `json:"description"`
	Recovery    string       `json:"recovery"`
}

// shapes are the API's JSON shapes, by the name the clients give them.
var shapes = map[string]any{
	"Asset":         apitype.Asset{},
	"Avatar":        apitype.Avatar{},
	"Load":          apitype.Load{},
	"Event":         apitype.Event{},
	"List":          apitype.List{},
	"Stats":         apitype.Stats{},
	"Size":          apitype.Size{},
	"Health":        apitype.Health{},
	"Session":       apitype.Session{},
	"VerifyResult":  apitype.VerifyResult{},
	"Removed":       apitype.Removed{},
	"Cancelled":     apitype.Cancelled{},
	"Error":         apitype.Error{},
	"ErrorResponse": apitype.ErrorResponse{},
}

func buildWire(t *testing.T) []byte {
	w := wire{
		Comment: "Generated from apitype by `go test ./apitype -update`; do not edit. " +
			"Every field of every shape is set, so a client that decodes and re-encodes a shape " +
			"unchanged knows all of its fields.",
		Shapes: map[string]json.RawMessage{},
		States: []apitype.State{apitype.StateDownloading, apitype.StateReady, apitype.StateStale,
			apitype.StateDamaged, apitype.StateFailed, apitype.StateCompleted},
		EventTypes: []string{apitype.EventProgress, apitype.EventCompleted, apitype.EventFailed, apitype.EventState},
		Waiting:    []string{apitype.WaitingQueued, apitype.WaitingRetrying},
	}
	for name, zero := range shapes {
		v := reflect.New(reflect.TypeOf(zero)).Elem()
		n := 0
		fill(v, "", &n)
		b, err := json.Marshal(v.Interface())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		w.Shapes[name] = b
	}
	for _, in := range errcode.Table() {
		w.ErrorCodes = append(w.ErrorCodes, wireCode{Code: in.Code, SDK: in.Web != "" || in.IOS != "" || in.Android != "",
			Description: in.Description, Recovery: in.Recovery})
	}
	b, err := json.MarshalIndent(w, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// fixedTime has nanoseconds, as the daemon's times do.
var fixedTime = time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.UTC)

// fill sets every field of v to a value that is not zero, so that no
// omitempty field is left out: strings say their field's JSON name,
// numbers count up, slices get one element.
func fill(v reflect.Value, name string, n *int) {
	if v.Type() == reflect.TypeOf(time.Time{}) {
		v.Set(reflect.ValueOf(fixedTime))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(name)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		*n++
		v.SetInt(int64(*n))
	case reflect.Float64:
		*n++
		v.SetFloat(float64(*n) + 0.5)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), name, n)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0), name, n)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			tag, _, _ := bytes.Cut([]byte(f.Tag.Get("json")), []byte(","))
			if !f.IsExported() || string(tag) == "-" {
				continue
			}
			fill(v.Field(i), string(tag), n)
		}
	default:
		panic("wire fixture: no filler for " + v.Type().String())
	}
}

// TestWireFixture: the clients' fixture is what apitype sends today.
func TestWireFixture(t *testing.T) {
	got := buildWire(t)
	if *update {
		if err := os.MkdirAll(filepath.Dir(wireFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(wireFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(wireFile)
	if err != nil {
		t.Fatalf("%v (run `go test ./apitype -update`)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is out of date: run `go test ./apitype -update`, then make the Python and Node clients "+
			"(clients/) decode the new shapes (make clients-test)", wireFile)
	}
}
