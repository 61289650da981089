package alive

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// TestStalled: a loop that beats on every tick is never stalled; one that
// stops is named once its allowance has passed, and no longer once it
// beats again or is stopped.
func TestStalled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := New(time.Second)
		turning, stuck := m.Loop("turning", 3*time.Second), m.Loop("stuck", 3*time.Second)
		done := make(chan struct{})
		go func() {
			for {
				select {
				case <-done:
					return
				case <-turning.C():
					turning.Beat()
				}
			}
		}()
		time.Sleep(2500 * time.Millisecond)
		if got := m.Stalled(); len(got) != 0 {
			t.Errorf("within the allowance: stalled %v", got)
		}
		time.Sleep(time.Second)
		if got := m.Stalled(); !slices.Equal(got, []string{"stuck"}) {
			t.Errorf("after the allowance: stalled %v, want [stuck]", got)
		}
		stuck.Beat()
		if got := m.Stalled(); len(got) != 0 {
			t.Errorf("after a beat: stalled %v", got)
		}
		time.Sleep(4 * time.Second)
		stuck.Stop()
		if got := m.Stalled(); len(got) != 0 {
			t.Errorf("after Stop: stalled %v", got)
		}
		close(done)
		turning.Stop()
	})
}

// TestNil: a daemon without a watchdog passes nil everywhere.
func TestNil(t *testing.T) {
	var m *Monitor
	l := m.Loop("x", time.Second)
	if l != nil || l.C() != nil || m.Stalled() != nil {
		t.Fatal("a nil monitor made something")
	}
	l.Beat()
	l.Stop()
}
