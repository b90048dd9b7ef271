package freelist

import "testing"

func TestList(t *testing.T) {
	var l List[int]
	if l.Get() != nil {
		t.Fatal("an empty list returned an item")
	}
	a, b, c := new(int), new(int), new(int)
	l.Put(a, 2)
	l.Put(b, 2)
	l.Put(c, 2) // beyond max: dropped
	for i, want := range []*int{b, a, nil} {
		if got := l.Get(); got != want {
			t.Errorf("Get %d = %p; want %p (last in, first out; the third not kept)", i, got, want)
		}
	}
}
