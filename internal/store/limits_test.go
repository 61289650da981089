package store

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype/errcode"
)

// SetLimits (a reloaded configuration) changes the quota and the reserve
// from the next EnsureSpace, and Stats reports them.
func TestSetLimits(t *testing.T) {
	clk := newClock()
	free := int64(1 << 30)
	s := openT(t, t.TempDir(), Options{Now: clk.Now, FreeSpace: func(string) (int64, error) { return free, nil }})
	defer s.Close()
	putT(t, s, "a", "1", map[string]string{"f": strings.Repeat("a", 100)})
	clk.Advance(time.Second)
	putT(t, s, "b", "1", map[string]string{"f": strings.Repeat("b", 100)})
	if ev, err := s.EnsureSpace(100); err != nil || ev != nil {
		t.Fatalf("EnsureSpace with no quota = %v, %v", ev, err)
	}

	s.SetLimits(250, 0)
	if st := s.Stats(); st.MaxBytes != 250 || st.ReserveBytes != 0 {
		t.Errorf("Stats after SetLimits = %+v", st)
	}
	if ev, err := s.EnsureSpace(100); err != nil || !slices.Equal(ev, []string{"a"}) {
		t.Fatalf("EnsureSpace under the new quota = %v, %v; want a evicted", ev, err)
	}

	s.SetLimits(0, free-50)
	if st := s.Stats(); st.MaxBytes != 0 || st.ReserveBytes != free-50 {
		t.Errorf("Stats after SetLimits = %+v", st)
	}
	if _, err := s.EnsureSpace(200); !errors.Is(err, &errcode.Error{Code: errcode.FailedToDownloadAvatarAssets, Reason: errcode.ReasonInsufficientStorage}) {
		t.Fatalf("EnsureSpace above the new reserve = %v", err)
	}
	if _, ok := s.Get("b"); !ok {
		t.Error("a failed EnsureSpace evicted b")
	}
}
