package fair

import (
	"slices"
	"testing"
)

func drain(q *Queue[string, int], ok func(string) bool) []int {
	var out []int
	for {
		_, v, found := q.Pop(ok)
		if !found {
			return out
		}
		out = append(out, v)
	}
}

func TestRoundRobinAcrossOwners(t *testing.T) {
	q := New[string, int]()
	for i := range 5 {
		q.Push("flood", false, 100+i)
	}
	q.Push("root", false, 1)
	q.Push("root", false, 2)
	// root came after flood's waiters but is served every other turn.
	if got, want := drain(q, nil), []int{100, 1, 101, 2, 102, 103, 104}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	if q.Len() != 0 || q.LenOf("flood") != 0 {
		t.Fatalf("len %d, flood %d after draining", q.Len(), q.LenOf("flood"))
	}
}

func TestInteractiveBeforeBackground(t *testing.T) {
	q := New[string, int]()
	q.Push("daemon", true, 1)
	q.Push("daemon", true, 2)
	q.Push("u", false, 3)
	q.Push("v", true, 4)
	q.Push("v", false, 5)
	if got, want := drain(q, nil), []int{3, 5, 1, 4, 2}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
}

func TestNewOwnerWaitsItsTurn(t *testing.T) {
	q := New[string, int]()
	q.Push("a", false, 1)
	q.Push("a", false, 2)
	q.Push("b", false, 3)
	if _, v, _ := q.Pop(nil); v != 1 {
		t.Fatalf("first %d", v)
	}
	// a, served, is behind b; c, new, goes after both.
	q.Push("c", false, 4)
	if got, want := drain(q, nil), []int{3, 2, 4}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
}

func TestPopSkipsOwnersNotAdmitted(t *testing.T) {
	q := New[string, int]()
	q.Push("capped", false, 1)
	q.Push("free", true, 2)
	_, v, found := q.Pop(func(k string) bool { return k != "capped" })
	if !found || v != 2 {
		t.Fatalf("got %d %v, want the background waiter of an admitted owner", v, found)
	}
	if _, _, found := q.Pop(func(k string) bool { return k != "capped" }); found {
		t.Fatal("popped a waiter of an owner not admitted")
	}
	if q.LenOf("capped") != 1 {
		t.Fatalf("capped has %d waiters", q.LenOf("capped"))
	}
}

func TestRemove(t *testing.T) {
	q := New[string, int]()
	q.Push("a", false, 1)
	q.Push("b", false, 2)
	q.Push("a", false, 3)
	q.Push("c", false, 4)
	if !q.Remove("b", false, 2) || q.Remove("b", false, 2) || q.Remove("a", true, 1) {
		t.Fatal("Remove reported wrongly")
	}
	if got, want := drain(q, nil), []int{1, 4, 3}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	if q.Len() != 0 {
		t.Fatalf("len %d", q.Len())
	}
}

func TestPopClassAndPeek(t *testing.T) {
	q := New[string, int]()
	q.Push("daemon", true, 1)
	q.Push("u", false, 2)
	q.Push("v", true, 3)
	if q.LenClass(true) != 2 || q.LenClass(false) != 1 {
		t.Fatalf("classes %d background, %d interactive", q.LenClass(true), q.LenClass(false))
	}
	if _, v, ok := q.Peek(true); !ok || v != 1 {
		t.Fatalf("peek background: %d %v", v, ok)
	}
	if _, v, ok := q.PopClass(true, nil); !ok || v != 1 {
		t.Fatalf("pop background: %d %v", v, ok)
	}
	if _, v, ok := q.Peek(false); !ok || v != 2 {
		t.Fatalf("peek interactive: %d %v", v, ok)
	}
	if !q.Remove("v", true, 3) || q.LenClass(true) != 0 {
		t.Fatal("remove")
	}
	if _, _, ok := q.PopClass(true, nil); ok {
		t.Fatal("popped an empty class")
	}
	if _, _, ok := q.Peek(true); ok {
		t.Fatal("peeked an empty class")
	}
	if q.Len() != 1 || q.LenClass(false) != 1 {
		t.Fatalf("len %d", q.Len())
	}
}

func TestPromote(t *testing.T) {
	q := New[string, int]()
	q.Push("u", true, 1)
	q.Push("u", true, 2)
	q.Push("v", true, 3)
	q.Push("u", false, 4)
	if n := q.Promote(func(_ string, v int) bool { return v == 2 || v == 3 }); n != 2 {
		t.Fatalf("promoted %d, want 2", n)
	}
	if q.LenClass(false) != 3 || q.LenClass(true) != 1 || q.Len() != 4 {
		t.Fatalf("classes %d interactive, %d background", q.LenClass(false), q.LenClass(true))
	}
	if got, want := drain(q, nil), []int{4, 3, 2, 1}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
}
