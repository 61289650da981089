package mailbox

import (
	"slices"
	"sync"
	"testing"
)

func TestPushTakeInOrder(t *testing.T) {
	b := New[int](nil)
	for i := range 5 {
		b.Push(i)
	}
	select {
	case <-b.Ready():
	default:
		t.Fatal("Ready has no value after a Push")
	}
	if got := b.Take(); !slices.Equal(got, []int{0, 1, 2, 3, 4}) {
		t.Fatalf("Take = %v", got)
	}
	if got := b.Take(); got != nil {
		t.Fatalf("second Take = %v, want nothing", got)
	}
}

// An odd value replaces an odd value queued last, once the box holds two
// or more: the rule decides, with n, as the manager's bounded queue does.
func TestReplace(t *testing.T) {
	b := New(func(n, last, next int) bool { return n >= 2 && last%2 == 1 && next%2 == 1 })
	for _, v := range []int{1, 3, 5, 2, 7, 9} {
		b.Push(v)
	}
	if got, want := b.Take(), []int{1, 5, 2, 9}; !slices.Equal(got, want) {
		t.Fatalf("Take = %v, want %v", got, want)
	}
}

func TestCloseDropsLaterPushes(t *testing.T) {
	b := New[string](nil)
	b.Push("a")
	if got := b.Close(); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("Close = %v", got)
	}
	b.Push("b")
	if got := b.Take(); got != nil {
		t.Fatalf("Take after Close = %v, want nothing", got)
	}
}

// Pushes from many goroutines all arrive; the reader is woken for each
// batch and never blocks a pusher.
func TestConcurrentPushes(t *testing.T) {
	b := New[int](nil)
	const pushers, each = 8, 1000
	var wg sync.WaitGroup
	for p := range pushers {
		wg.Go(func() {
			for i := range each {
				b.Push(p*each + i)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	got := 0
	for got < pushers*each {
		select {
		case <-b.Ready():
			got += len(b.Take())
		case <-done:
			got += len(b.Take())
			if got != pushers*each {
				t.Fatalf("got %d values, want %d", got, pushers*each)
			}
		}
	}
}
