package nexmark

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/runtime/value"
)

// TestJavaRandom checks the generator against java.util.Random's documented
// algorithm by values Java gives: new Random(0).nextInt() and so on.
func TestJavaRandom(t *testing.T) {
	r := newJavaRandom(0)
	if got := r.next(32); got != -1155484576 {
		t.Errorf("new Random(0).nextInt() = %d; Java gives -1155484576", got)
	}
	r = newJavaRandom(42)
	if got := r.next(32); got != -1170105035 {
		t.Errorf("new Random(42).nextInt() = %d; Java gives -1170105035", got)
	}
	r = newJavaRandom(0)
	if got := r.float64(); got != 0.730967787376657 {
		t.Errorf("new Random(0).nextDouble() = %v; Java gives 0.730967787376657", got)
	}
	r = newJavaRandom(0)
	if got := r.int64(); got != -4962768465676381896 {
		t.Errorf("new Random(0).nextLong() = %d; Java gives -4962768465676381896", got)
	}
	// skip(n) is n draws.
	for n := range 300 {
		drawn, skipped := newJavaRandom(int64(n)), newJavaRandom(int64(n))
		for range n {
			drawn.next(32)
		}
		if skipped.skip(n); skipped.seed != drawn.seed {
			t.Fatalf("skip(%d) left seed %#x; %d draws leave %#x", n, skipped.seed, n, drawn.seed)
		}
	}
	// nextInt(bound) is uniform below bound, for powers of two and not.
	for _, bound := range []int32{1, 2, 13, 26, 1 << 20, 1_000_000_007} {
		r := newJavaRandom(int64(bound))
		for range 1000 {
			if v := r.intN(bound); v < 0 || v >= bound {
				t.Fatalf("nextInt(%d) = %d", bound, v)
			}
		}
	}
}

// TestEventNumbers: the three kinds' events take every event number once,
// 1, 3 and 46 of every 50.
func TestEventNumbers(t *testing.T) {
	const n = 5000
	seen := make([]int, n)
	counts := map[Kind]int{}
	for _, k := range []Kind{Person, Auction, Bid} {
		for i := int64(0); ; i++ {
			id := k.EventID(i)
			if id >= n {
				break
			}
			seen[id]++
			counts[k]++
		}
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("event %d is made by %d kinds", id, c)
		}
	}
	if counts[Person] != n/50 || counts[Auction] != 3*n/50 || counts[Bid] != 46*n/50 {
		t.Errorf("%v events of each kind in %d; want 1, 3 and 46 in 50", counts, n)
	}
	for _, events := range []int64{0, 1, 3, 4, 5, 49, 50, 51, 4999} {
		for _, k := range []Kind{Person, Auction, Bid} {
			want := int64(0)
			for i := int64(0); k.EventID(i) < events; i++ {
				want++
			}
			if got := k.Count(events); got != want {
				t.Errorf("%s.Count(%d) = %d; want %d", k, events, got, want)
			}
		}
	}
}

// all is every column of kind's schema.
func all(k Kind) []int {
	cols := make([]int, len(k.Columns()))
	for i := range cols {
		cols[i] = i
	}
	return cols
}

// TestColumnsChosen: an event's fields do not depend on which columns are
// made, in which order: the strings not read before one read are drawn
// all the same, and the fields after the last read are not drawn.
func TestColumnsChosen(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, k := range []Kind{Person, Auction, Bid} {
		whole, _ := New(k, all(k))
		if whole.draws != len(fieldsDrawn[k]) {
			t.Errorf("%s with every column draws %d fields of %d", k, whole.draws, len(fieldsDrawn[k]))
		}
		var choices [][]int
		for c := range k.Columns() {
			choices = append(choices, []int{c})
		}
		for range 30 {
			cols := rng.Perm(len(k.Columns()))[:1+rng.IntN(len(k.Columns()))]
			cols = append(cols, -1) // left NULL
			rng.Shuffle(len(cols), func(i, j int) { cols[i], cols[j] = cols[j], cols[i] })
			choices = append(choices, cols)
		}
		for _, cols := range choices {
			some, err := New(k, cols)
			if err != nil {
				t.Fatal(err)
			}
			full, part := make(value.Row, len(k.Columns())), make(value.Row, len(cols))
			for i := range int64(200) {
				whole.Fill(i, full)
				clear(part)
				some.Fill(i, part)
				for j, c := range cols {
					want := value.NullValue()
					if c >= 0 {
						want = full[c]
					}
					if !value.Equal(part[j], want) {
						t.Fatalf("%s event %d, columns %v: column %d is %v, %v with every column", k, i, cols, c, part[j], want)
					}
				}
			}
		}
	}
	if g, _ := New(Auction, []int{0, 7, 5}); g.draws != 1 {
		t.Errorf("auctions' ids, sellers and times draw %d fields; want the seller's alone", g.draws)
	}
	if _, err := New(Bid, []int{2, 2}); err == nil {
		t.Error("a column made twice: no error")
	}
}

// TestBids: bids are for auctions and by people that exist, or are a
// little ahead; half of them go to the hot auction and three quarters
// come from hot bidders; events come 10 a millisecond; and a bid is about
// 100 bytes, as the suites make them.
func TestBids(t *testing.T) {
	g, _ := New(Bid, all(Bid))
	row := make(value.Row, len(Bid.Columns()))
	const n = 46_000
	hotAuction, hotBidder, bytes := 0, 0, 0
	prices := make([]int64, 0, n)
	var lastTime int64
	for i := range int64(n) {
		g.Fill(i, row)
		id := Bid.EventID(i)
		auction, bidder := row[0].Int()-firstAuctionID, row[1].Int()-firstPersonID
		if auction < 0 || auction > lastAuction(id)+auctionIDLead {
			t.Fatalf("bid %d (event %d) is for auction %d; the last is %d", i, id, auction, lastAuction(id))
		}
		if bidder < 0 || bidder > lastPerson(id)+personIDLead {
			t.Fatalf("bid %d (event %d) is by person %d; the last is %d", i, id, bidder, lastPerson(id))
		}
		if auction == lastAuction(id)/hotRatio*hotRatio {
			hotAuction++
		}
		if bidder == lastPerson(id)/hotRatio*hotRatio+1 {
			hotBidder++
		}
		ts := row[5].Nanos()
		if want := (Epoch + id/10) * 1e6; ts != want {
			t.Fatalf("bid %d (event %d) at %d; want %d", i, id, ts, want)
		}
		if ts < lastTime {
			t.Fatalf("bid %d is earlier than the one before", i)
		}
		lastTime = ts
		prices = append(prices, row[2].Int())
		bytes += 8*4 + len(row[6].Str())
	}
	// About: the first draws of Randoms seeded with successive ids are
	// not independent, in the suites as here (0.471 of these).
	if share := float64(hotAuction) / n; share < 0.45 || share > 0.6 {
		t.Errorf("%.3f of the bids are for the hot auction; want about 1/2", share)
	}
	if share := float64(hotBidder) / n; share < 0.74 || share > 0.8 {
		t.Errorf("%.3f of the bids are by the hot bidder; want about 3/4", share)
	}
	if avg := float64(bytes) / n; math.Abs(avg-avgBidBytes) > 2 {
		t.Errorf("a bid is %.1f bytes on average; want about %d", avg, avgBidBytes)
	}
	slices.Sort(prices)
	// Prices spread evenly over the orders of magnitude: the median is
	// about 10^3 dollars.
	if median := prices[n/2]; median < 50_000 || median > 200_000 {
		t.Errorf("the median price is %d cents; want about 100,000", median)
	}
	if prices[0] < 100 || prices[n-1] > 100_000_000 {
		t.Errorf("prices from %d to %d cents; want 100 to 100,000,000", prices[0], prices[n-1])
	}
}

// TestAuctionsAndPeople: auctions are sold by people that exist, or are a
// little ahead, close after they open, and are about 500 bytes; people
// are about 200 bytes, with the ids in order.
func TestAuctionsAndPeople(t *testing.T) {
	g, _ := New(Auction, all(Auction))
	row := make(value.Row, len(Auction.Columns()))
	bytes := 0
	const n = 3000
	for i := range int64(n) {
		g.Fill(i, row)
		id := Auction.EventID(i)
		if row[0].Int() != i+firstAuctionID {
			t.Fatalf("auction %d has id %d", i, row[0].Int())
		}
		if seller := row[7].Int() - firstPersonID; seller < 0 || seller > lastPerson(id)+personIDLead {
			t.Fatalf("auction %d is sold by %d; the last person is %d", i, seller, lastPerson(id))
		}
		if c := row[8].Int(); c < firstCategory || c >= firstCategory+numCategories {
			t.Fatalf("auction %d has category %d", i, c)
		}
		if row[6].Nanos() <= row[5].Nanos() || row[4].Int() <= row[3].Int() {
			t.Fatalf("auction %d: expires %v at or before %v, or reserve %d not above %d", i, row[6], row[5], row[4].Int(), row[3].Int())
		}
		bytes += 8 + len(row[1].Str()) + len(row[2].Str()) + 8*5 + len(row[9].Str())
	}
	if avg := float64(bytes) / n; math.Abs(avg-avgAuctionBytes) > 10 {
		t.Errorf("an auction is %.1f bytes on average; want about %d", avg, avgAuctionBytes)
	}
	g, _ = New(Person, all(Person))
	row = make(value.Row, len(Person.Columns()))
	bytes = 0
	for i := range int64(n) {
		g.Fill(i, row)
		if row[0].Int() != i+firstPersonID {
			t.Fatalf("person %d has id %d", i, row[0].Int())
		}
		if len(row[3].Str()) != 19 || !slices.Contains(usStates[:], row[5].Str()) {
			t.Fatalf("person %d: card %q, state %q", i, row[3].Str(), row[5].Str())
		}
		for _, c := range []int{1, 2, 3, 4, 5, 7} {
			bytes += len(row[c].Str())
		}
		bytes += 8
	}
	if avg := float64(bytes) / n; math.Abs(avg-avgPersonBytes) > 5 {
		t.Errorf("a person is %.1f bytes on average; want about %d", avg, avgPersonBytes)
	}
}

// TestChannels: the channels' URLs are the suites', drawn from a Random
// seeded with the channel's number.
func TestChannels(t *testing.T) {
	table := channelTable()
	if len(table) != channels || table[7].name != "channel-7" {
		t.Fatalf("%d channels, the 8th %q", len(table), table[7].name)
	}
	withID := 0
	for _, c := range table {
		if !strings.HasPrefix(c.url, "https://www.nexmark.com/") {
			t.Fatalf("channel %s has URL %q", c.name, c.url)
		}
		if strings.Contains(c.url, "&channel_id=") {
			withID++
		}
	}
	if share := float64(withID) / channels; share < 0.88 || share > 0.92 {
		t.Errorf("%.3f of the channels have an id in their URL; want 9 in 10", share)
	}
	if reverse32(1) != math.MinInt32 || abs32(reverse32(2)) != 1<<30 {
		t.Errorf("Integer.reverse(1) = %d, reverse(2) = %d", reverse32(1), reverse32(2))
	}
}

// BenchmarkFill makes events of each kind with every column, as q0 reads
// bids.
func BenchmarkFill(b *testing.B) {
	for _, k := range []Kind{Person, Auction, Bid} {
		b.Run(k.String(), func(b *testing.B) {
			g, _ := New(k, all(k))
			row := make(value.Row, len(k.Columns()))
			b.ReportAllocs()
			for i := range int64(b.N) {
				g.Fill(i, row)
			}
		})
	}
}

// TestGolden pins the first events: a change to the order or the kind of
// the draws changes every event after it. (These are this generator's
// values. No JVM runs here: a review compared the first 3,000 events of
// each kind with a Java copy of the suites' generator, and found only the
// extra field's draws wrong, fixed since.)
func TestGolden(t *testing.T) {
	want := map[Kind][]string{
		Person: {"1000", "Peter Jones", "nhd@xcat.com", "7241 7320 9143 4888", "Portland", "WY", "2024-01-01T00:00:00Z",
			"WN_HS_bnpkkiwhwana_L^`KZjdgsid`K]MLU[aaOH`ztxbulvlxtkn_ZZ^T\\mqgdjzvlkymsmfrhkfVYSXK_OY[aVYVKa\\X^]RO]OYguwiduWJNQLLaMLHOTaHY_J[YKWaUOSJN_VHWXZ]`SgbnjqeVVQ\\[["},
		Auction: {"1000", "wkx mgee", "eszpqxtdxrvwmmywkmogoahf", "28873", "29448", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00.011Z", "1000", "13",
			"zcurskufssowmihzpmZHWQM^fnleramznyyqimoheaRSWV^OjtfjhgXRa`[PVHUOMTbrqqzjyztfwnhstxbu]\\V_XPldnjuo^^PJQMnwhlsenoniir^aNZI__IP[QLYPROSNW]HYP\\L]W^PTkfnbtwuqucwreikflftlgtebaurwml^RMRIPqevmpqsnxmcblfvpfeajfopsHS^U[Jzxwajo_W`RXa[XWI[`VXZOR^lghgmwHITMP[dbwdgtPQJYHLjnubcsjgszqvyzeoeqjcbaazmrqamxoxgrjh`L`]_Y^OQM]ItjxtuwZJS[RTmrkpofsnuysxuvwbuzrqkrkkqpiz"},
		Bid: {"1000", "1001", "32530001", "Google", "", "2024-01-01T00:00:00Z", "sbolvyqwgticfdrwdyiyofziYMU\\Z`UaTQO][NX\\RM]WPYTOuwogvszlx"},
	}
	for k, fields := range want {
		g, _ := New(k, all(k))
		row := make(value.Row, len(k.Columns()))
		g.Fill(0, row)
		for i, v := range row {
			if k == Bid && i == 4 {
				continue // the hot channel's URL, which the suites do not fix
			}
			if v.String() != fields[i] {
				t.Errorf("%s 0, %s: %q; want %q", k, k.Columns()[i].Name, v.String(), fields[i])
			}
		}
	}
}

// TestSideInput: q13's side input is the suites' side_input.txt, row i
// being key i and value "i", 10,000 rows whatever the events.
func TestSideInput(t *testing.T) {
	kind, ok := KindOf("nexmark-side-input")
	if !ok || kind != SideInput {
		t.Fatalf("KindOf(nexmark-side-input) = %v, %v", kind, ok)
	}
	if n := kind.Count(5_000_000); n != SideInputRows {
		t.Errorf("Count = %d; want %d", n, SideInputRows)
	}
	g, err := New(SideInput, []int{1, 0})
	if err != nil {
		t.Fatal(err)
	}
	row := make(value.Row, 2)
	for _, i := range []int64{0, 1, 9999} {
		g.Fill(i, row)
		if row[0].Str() != strconv.FormatInt(i, 10) || row[1].Int() != i {
			t.Errorf("row %d = %v; want [%d %d]", i, row, i, i)
		}
	}
}
