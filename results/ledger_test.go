package results

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// rangesOf turns a set of ids into sorted, merged ranges: the reference the
// ledger must match exactly.
func rangesOf(ids map[int64]bool) []Range {
	var s []int64
	for id := range ids {
		s = append(s, id)
	}
	slices.Sort(s)
	out := []Range{}
	for _, id := range s {
		if n := len(out); n > 0 && out[n-1].Hi+1 == id {
			out[n-1].Hi = id
			continue
		}
		out = append(out, Range{id, id})
	}
	return out
}

func TestLedgerOutOfOrder(t *testing.T) {
	cases := []struct {
		ids  []int64
		want []Range
	}{
		{[]int64{1, 2, 3, 5, 4}, []Range{{1, 5}}},
		{[]int64{5, 3, 1}, []Range{{1, 1}, {3, 3}, {5, 5}}},
		{[]int64{5, 3, 1, 2, 4}, []Range{{1, 5}}},
		{[]int64{10, 11, 12, 1, 2, 3, 7, 2, 11, 6, 8}, []Range{{1, 3}, {6, 8}, {10, 12}}},
		{[]int64{10, 11, 12, 1, 2, 3, 7, 6, 8, 5, 4, 9}, []Range{{1, 12}}},
		{[]int64{math.MaxInt64, math.MaxInt64 - 1, math.MinInt64, math.MinInt64 + 1}, []Range{{math.MinInt64, math.MinInt64 + 1}, {math.MaxInt64 - 1, math.MaxInt64}}},
		{[]int64{-1, 1, 0}, []Range{{-1, 1}}},
	}
	for _, c := range cases {
		l := NewLedger()
		for _, id := range c.ids {
			l.Ack(7, id)
		}
		if got := l.Acked(); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("acks %v: ranges %v, want %v", c.ids, got, c.want)
		}
	}

	// Random: mostly increasing ids with holes, shuffled locally, duplicated,
	// from several writers; compared with the set computed the slow way.
	rng := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 50; round++ {
		l := NewLedger()
		all := map[int64]bool{}
		per := map[int]map[int64]bool{}
		for w := 0; w < 3; w++ {
			per[w] = map[int64]bool{}
			var ids []int64
			for id := int64(w * 500); id < int64(w*500+700); id++ { // writers overlap
				if rng.IntN(10) != 0 {
					ids = append(ids, id)
				}
			}
			for i := range ids { // local disorder
				j := min(len(ids)-1, i+rng.IntN(20))
				ids[i], ids[j] = ids[j], ids[i]
			}
			if round%2 == 1 {
				rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
			}
			for _, id := range ids {
				l.Ack(w, id)
				if rng.IntN(7) == 0 {
					l.Ack(w, id) // duplicate
				}
				all[id], per[w][id] = true, true
			}
		}
		if got, want := l.Acked(), rangesOf(all); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("round %d: ranges\n got %v\nwant %v", round, got, want)
		}
		acked, _ := l.Count()
		if want := int64(len(per[0]) + len(per[1]) + len(per[2])); acked != want {
			t.Fatalf("round %d: acked %d, want %d", round, acked, want)
		}
		for w := 0; w < 3; w++ {
			if got, want := l.writers[w].acked, rangesOf(per[w]); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("round %d writer %d: ranges\n got %v\nwant %v", round, w, got, want)
			}
		}
	}
}

func TestLedgerMillionIsOneRange(t *testing.T) {
	l := NewLedger()
	for id := int64(1); id <= 1_000_000; id++ {
		l.Ack(1, id)
	}
	if got := l.writers[1].acked; len(got) != 1 || got[0] != (Range{1, 1_000_000}) {
		t.Fatalf("1M consecutive acks: %d ranges", len(got))
	}
	if a, u := l.Count(); a != 1_000_000 || u != 0 {
		t.Fatalf("Count = %d, %d", a, u)
	}
}

func TestLedgerFile(t *testing.T) {
	l := NewLedger()
	for id := int64(1); id <= 100; id++ {
		if id%10 == 0 {
			l.Unknown(1, id)
			continue
		}
		l.Ack(1, id)
	}
	l.Unknown(1, 10) // reported twice: one unknown id
	l.Unknown(2, 1005)
	l.Unknown(2, 1001)
	l.Ack(2, 1000)
	l.Ack(3, 7)
	if a, u := l.Count(); a != 92 || u != 12 {
		t.Fatalf("Count = %d, %d; want 92, 12", a, u)
	}
	path := filepath.Join(t.TempDir(), "ledger.json")
	if err := l.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), `{"version":1,"writers":[{"writer":1,"acked":[[1,9],[11,19],`) ||
		!strings.Contains(string(b), `{"writer":2,"acked":[[1000,1000]],"unknown":[1001,1005]}`) ||
		!strings.Contains(string(b), `{"writer":3,"acked":[[7,7]],"unknown":[]}`) {
		t.Fatalf("ledger file:\n%s", b)
	}
	r, err := ReadLedger(path)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(r.Acked()) != fmt.Sprint(l.Acked()) {
		t.Fatalf("round trip: %v, want %v", r.Acked(), l.Acked())
	}
	if a, u := r.Count(); a != 92 || u != 12 {
		t.Fatalf("round trip Count = %d, %d; want 92, 12", a, u)
	}
	path2 := filepath.Join(t.TempDir(), "again.json")
	if err := r.WriteFile(path2); err != nil {
		t.Fatal(err)
	}
	if b2, _ := os.ReadFile(path2); string(b2) != string(b) {
		t.Fatalf("written again:\n%s\nwant\n%s", b2, b)
	}

	for name, content := range map[string]string{
		"newer":    `{"version":2,"writers":[]}`,
		"none":     `{"writers":[]}`,
		"lo > hi":  `{"version":1,"writers":[{"writer":1,"acked":[[5,4]],"unknown":[]}]}`,
		"not json": `{`,
	} {
		p := filepath.Join(t.TempDir(), "bad.json")
		os.WriteFile(p, []byte(content), 0o644)
		_, err := ReadLedger(p)
		if err == nil {
			t.Fatalf("%s: ReadLedger succeeded", name)
		}
		if name == "newer" && (!strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "version 2") || !strings.Contains(err.Error(), "version 1")) {
			t.Fatalf("newer: %v", err)
		}
	}
	// Unsorted, overlapping ranges in a file are merged on read.
	p := filepath.Join(t.TempDir(), "messy.json")
	os.WriteFile(p, []byte(`{"version":1,"writers":[{"writer":1,"acked":[[10,20],[1,5],[6,9],[15,30]],"unknown":[3,3,1]}]}`), 0o644)
	m, err := ReadLedger(p)
	if err != nil {
		t.Fatal(err)
	}
	if a, u := m.Count(); fmt.Sprint(m.Acked()) != "[{1 30}]" || a != 30 || u != 2 {
		t.Fatalf("messy: %v %d %d", m.Acked(), a, u)
	}
}

func TestLedgerConcurrent(t *testing.T) {
	l := NewLedger()
	done := make(chan struct{})
	for w := 0; w < 8; w++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for id := int64(0); id < 10000; id++ {
				l.Ack(w%2, id*8+int64(w)) // writers 0 and 1 interleave ids
				if id%100 == 0 {
					l.Unknown(w, id)
				}
			}
		}()
	}
	for i := 0; i < 8; i++ {
		<-done
	}
	if got := l.Acked(); len(got) != 1 || got[0] != (Range{0, 79999}) {
		t.Fatalf("%d ranges, first %v, want one: [0, 79999]", len(got), got[0])
	}
	if a, u := l.Count(); a != 80000 || u != 8*100 {
		t.Fatalf("Count = %d, %d; want 80000, 800", a, u)
	}
}

// Unknowns merges every writer's unknown ids, sorted, each once.
func TestLedgerUnknowns(t *testing.T) {
	l := NewLedger()
	if got := l.Unknowns(); len(got) != 0 {
		t.Errorf("empty ledger: unknowns %v", got)
	}
	l.Unknown(2, 30)
	l.Unknown(1, 20)
	l.Unknown(1, 5)
	l.Unknown(2, 5) // two writers, one id: listed once
	l.Unknown(1, 20)
	l.Ack(1, 6)
	if got, want := l.Unknowns(), []int64{5, 20, 30}; !slices.Equal(got, want) {
		t.Errorf("unknowns %v, want %v", got, want)
	}
	if _, n := l.Count(); n != 4 {
		t.Errorf("count of unknown %d, want 4 (once per writer)", n)
	}
}

// MergeRanges sorts and merges ranges that overlap or touch, leaves its input as it
// was, and does not wrap past math.MaxInt64.
func TestMergeRanges(t *testing.T) {
	const top = math.MaxInt64
	for _, tc := range []struct {
		in, want []Range
	}{
		{nil, []Range{}},
		{[]Range{{5, 9}}, []Range{{5, 9}}},
		{[]Range{{10, 12}, {1, 3}, {4, 4}, {20, 30}, {25, 26}, {6, 8}, {9, 9}}, []Range{{1, 4}, {6, 12}, {20, 30}}},
		{[]Range{{1, 2}, {4, 5}}, []Range{{1, 2}, {4, 5}}}, // a gap of one id stays
		{[]Range{{top - 1, top}, {5, 6}, {top, top}}, []Range{{5, 6}, {top - 1, top}}},
		{[]Range{{top - 5, top}, {top - 3, top - 2}}, []Range{{top - 5, top}}},
	} {
		in := slices.Clone(tc.in)
		if got := MergeRanges(tc.in); !slices.Equal(got, tc.want) || got == nil {
			t.Errorf("MergeRanges(%v) = %v, want %v", tc.in, got, tc.want)
		}
		if !slices.Equal(in, tc.in) {
			t.Errorf("MergeRanges changed its input to %v", tc.in)
		}
	}
}
