// Package nexmark generates the events of the Nexmark benchmark (people,
// auctions and bids of an online auction site) as the generators of the
// Beam and Flink Nexmark suites do, with their default configuration: of
// every 50 events, 1 is a person, 3 are auctions and 46 are bids; bids go
// to hot auctions and come from hot bidders as often; ids follow the
// event's number. As Beam's generator does, each event's fields are drawn
// from a java.util.Random seeded with its number, so any event is made
// without the ones before it; Flink's draws with the same formulas from
// one Random per generator. Where the two differ, this follows Beam: a
// bidder's id is 1000 plus its number (Flink's adds 1000 twice).
//
// Event n's time is a fixed epoch plus n times the gap between events at
// the suites' first event rate, 10,000 a second: the event time, and so
// every windowed result, is the same whatever the speed of generation.
// The suites start at the wall clock instead.
package nexmark

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"

	"github.com/sluice-dev/sluice/runtime/connector/schemas"
	"github.com/sluice-dev/sluice/runtime/format"
	"github.com/sluice-dev/sluice/runtime/value"
)

// Kind is the type of event a generator makes.
type Kind int

// The event types, in the order of their share of the event numbers, and
// the side input of q13, which is not an event.
const (
	Person Kind = iota
	Auction
	Bid
	// SideInput is the rows of q13's bounded side input: key i and value
	// i as text, for i from 0, as the suites' side_input.txt has them
	// (SideInputGenerator: 10,000 rows).
	SideInput
)

// SideInputRows is how many rows the suites' side input has.
const SideInputRows = 10_000

// The suites' default configuration (Beam's GeneratorConfig and
// NexmarkConfiguration).
const (
	personProportion  = 1
	auctionProportion = 3
	bidProportion     = 46
	totalProportion   = personProportion + auctionProportion + bidProportion

	firstPersonID  = 1000
	firstAuctionID = 1000
	firstCategory  = 10
	numCategories  = 5

	// A hot auction, seller or bidder is the first (for a bidder, the
	// second) of the last hotRatio auctions or people; each ratio below
	// is one over the chance of not choosing the hot one.
	hotRatio            = 100
	hotAuctionRatio     = 2
	hotSellersRatio     = 4
	hotBiddersRatio     = 4
	hotChannelsRatio    = 2
	numActivePeople     = 1000
	numInFlightAuctions = 100
	personIDLead        = 10
	auctionIDLead       = 10
	channels            = 10_000

	avgPersonBytes  = 200
	avgAuctionBytes = 500
	avgBidBytes     = 100

	minStringLength = 3

	// interEventMicros is the gap between two events' times at the first
	// event rate, 10,000 events a second.
	interEventMicros = 100
)

// Epoch is the time of event 0, in milliseconds since 1970:
// 2024-01-01T00:00:00Z.
const Epoch = 1704067200000

// Columns returns the schema of kind's events (package schemas).
func (k Kind) Columns() []value.Column {
	switch k {
	case Person:
		return schemas.NexmarkPerson
	case Auction:
		return schemas.NexmarkAuction
	case SideInput:
		return schemas.NexmarkSideInput
	}
	return schemas.NexmarkBid
}

// KindOf returns the kind a generator name (nexmark-bid) makes.
func KindOf(generator string) (Kind, bool) {
	for _, k := range []Kind{Person, Auction, Bid, SideInput} {
		if k.String() == generator {
			return k, true
		}
	}
	return 0, false
}

// Generator makes the events of one kind into rows of some of its columns.
type Generator struct {
	kind Kind
	// at is, for each column of kind's schema read, its place in a row
	// plus one; 0 for the others, left NULL (reads). The strings of those
	// are drawn, where the fields after them depend on the draws, but not
	// made.
	at [10]int
	// draws is how many of an event's fields (fieldsDrawn) are drawn:
	// those up to the last that makes a column read. The draws after it
	// would make nothing read, and each event's draws start from its own
	// seed.
	draws int
}

// fieldsDrawn lists, for each kind, the fields an event draws, in the
// suites' order, each as the columns it makes: event n's id and time are
// n's, drawn from nothing.
var fieldsDrawn = map[Kind][][]int{
	// first and last names, email, credit card, city, state, extra
	Person: {{1}, {2}, {3}, {4}, {5}, {7}},
	// seller, category, initial bid, expiry, item name, description,
	// reserve (the initial bid plus a price), extra
	Auction: {{7}, {8}, {3}, {6}, {1}, {2}, {4}, {9}},
	// auction, bidder, price, channel and URL, extra
	Bid: {{0}, {1}, {2}, {3, 4}, {6}},
}

// New returns the generator of kind's events into rows of cols, indexes
// of kind's schema; a column of index -1 is left NULL.
func New(kind Kind, cols []int) (*Generator, error) {
	g := &Generator{kind: kind}
	schema := kind.Columns()
	for k, c := range cols {
		if c == -1 {
			continue
		}
		if c < 0 || c >= len(schema) {
			return nil, fmt.Errorf("nexmark: no column %d in the %d of the %s events", c, len(schema), kind)
		}
		if g.reads(c) {
			return nil, fmt.Errorf("nexmark: column %d twice", c)
		}
		g.at[c] = k + 1
	}
	for i, makes := range fieldsDrawn[kind] {
		if slices.ContainsFunc(makes, g.reads) {
			g.draws = i + 1
		}
	}
	return g, nil
}

// Kind is the kind of events g makes.
func (g *Generator) Kind() Kind { return g.kind }

// String names the kind as its generator does.
func (k Kind) String() string {
	switch k {
	case Person:
		return "nexmark-person"
	case Auction:
		return "nexmark-auction"
	case SideInput:
		return "nexmark-side-input"
	}
	return "nexmark-bid"
}

// EventID is the event number of the kind's i-th event (from 0); a side
// input row's is its number.
func (k Kind) EventID(i int64) int64 {
	switch k {
	case SideInput:
		return i
	case Person:
		return i/personProportion*totalProportion + i%personProportion
	case Auction:
		return i/auctionProportion*totalProportion + personProportion + i%auctionProportion
	}
	return i/bidProportion*totalProportion + personProportion + auctionProportion + i%bidProportion
}

// Count is how many of the event numbers below events are the kind's; the
// side input has its SideInputRows whatever the events.
func (k Kind) Count(events int64) int64 {
	first, share := int64(0), int64(personProportion)
	switch k {
	case SideInput:
		return SideInputRows
	case Auction:
		first, share = personProportion, auctionProportion
	case Bid:
		first, share = personProportion+auctionProportion, bidProportion
	}
	rest := events % totalProportion
	return events/totalProportion*share + min(max(rest-first, 0), share)
}

// timestamp is event n's time in milliseconds.
func timestamp(n int64) int64 { return Epoch + n*interEventMicros/1000 }

// Fill makes the kind's i-th event into row.
func (g *Generator) Fill(i int64, row value.Row) {
	if g.kind == SideInput {
		g.set(row, 0, value.IntValue(i))
		if g.reads(1) {
			g.set(row, 1, value.StringValue(strconv.FormatInt(i, 10)))
		}
		return
	}
	id := g.kind.EventID(i)
	r := newJavaRandom(id)
	ts := timestamp(id)
	switch g.kind {
	case Person:
		g.person(&r, id, ts, row)
	case Auction:
		g.auction(&r, id, ts, row)
	default:
		g.bid(&r, id, ts, row)
	}
}

// reads says column col of kind's schema is read.
func (g *Generator) reads(col int) bool { return g.at[col] > 0 }

// set writes v as column col of the event's row, if it is read.
func (g *Generator) set(row value.Row, col int, v value.Value) {
	if k := g.at[col]; k > 0 {
		row[k-1] = v
	}
}

// person makes a person's row. Each field is drawn in the suites' order,
// up to the last one read (g.draws): each return below stops there.
func (g *Generator) person(r *javaRandom, id, ts int64, row value.Row) {
	const name, email, card, city, state, extra = 1, 2, 3, 4, 5, 7
	g.set(row, 0, value.IntValue(lastPerson(id)+firstPersonID))
	g.set(row, 6, value.TimestampValue(ts*1e6))
	if g.draws < 1 {
		return
	}
	first, last := firstNames[r.intN(int32(len(firstNames)))], lastNames[r.intN(int32(len(lastNames)))]
	if g.reads(name) {
		g.set(row, name, value.StringValue(first+" "+last))
	}
	if g.draws < 2 {
		return
	}
	user, userLen := r.str(7, ' ', g.reads(email))
	host, hostLen := r.str(5, ' ', g.reads(email))
	if g.reads(email) {
		g.set(row, email, value.StringValue(user+"@"+host+".com"))
	}
	if g.draws < 3 {
		return
	}
	var digits [4]int32
	for k := range digits {
		digits[k] = r.intN(10_000)
	}
	if g.reads(card) {
		b := make([]byte, 0, 19)
		for k, d := range digits {
			if k > 0 {
				b = append(b, ' ')
			}
			b = append(b, byte('0'+d/1000), byte('0'+d/100%10), byte('0'+d/10%10), byte('0'+d%10))
		}
		g.set(row, card, value.StringValue(format.BytesString(b))) // b is not used again
	}
	if g.draws < 4 {
		return
	}
	c := usCities[r.intN(int32(len(usCities)))]
	g.set(row, city, value.StringValue(c))
	if g.draws < 5 {
		return
	}
	s := usStates[r.intN(int32(len(usStates)))]
	g.set(row, state, value.StringValue(s))
	if g.draws < 6 {
		return
	}
	size := 8 + len(first) + 1 + len(last) + userLen + 1 + hostLen + 4 + 19 + len(c) + len(s)
	g.set(row, extra, value.StringValue(r.extra(size, avgPersonBytes, g.reads(extra))))
}

// auction makes an auction's row, as person does.
func (g *Generator) auction(r *javaRandom, id, ts int64, row value.Row) {
	const itemName, description, initialBid, reserve, expires, seller, category, extra = 1, 2, 3, 4, 6, 7, 8, 9
	g.set(row, 0, value.IntValue(lastAuction(id)+firstAuctionID))
	g.set(row, 5, value.TimestampValue(ts*1e6))
	if g.draws < 1 {
		return
	}
	var by int64
	if r.intN(hotSellersRatio) > 0 {
		by = lastPerson(id) / hotRatio * hotRatio
	} else {
		by = r.nextPerson(id)
	}
	g.set(row, seller, value.IntValue(by+firstPersonID))
	if g.draws < 2 {
		return
	}
	g.set(row, category, value.IntValue(firstCategory+int64(r.intN(numCategories))))
	if g.draws < 3 {
		return
	}
	initial := r.price()
	g.set(row, initialBid, value.IntValue(initial))
	if g.draws < 4 {
		return
	}
	g.set(row, expires, value.TimestampValue((ts+r.auctionLength(id, ts))*1e6))
	if g.draws < 5 {
		return
	}
	name, nameLen := r.str(20, ' ', g.reads(itemName))
	g.set(row, itemName, value.StringValue(name))
	if g.draws < 6 {
		return
	}
	desc, descLen := r.str(100, ' ', g.reads(description))
	g.set(row, description, value.StringValue(desc))
	if g.draws < 7 {
		return
	}
	g.set(row, reserve, value.IntValue(initial+r.price()))
	if g.draws < 8 {
		return
	}
	g.set(row, extra, value.StringValue(r.extra(8+nameLen+descLen+8*5, avgAuctionBytes, g.reads(extra))))
}

// bid makes a bid's row, as person does.
func (g *Generator) bid(r *javaRandom, id, ts int64, row value.Row) {
	const auction, bidder, price, channelName, url, extra = 0, 1, 2, 3, 4, 6
	g.set(row, 5, value.TimestampValue(ts*1e6))
	if g.draws < 1 {
		return
	}
	var of int64
	if r.intN(hotAuctionRatio) > 0 {
		of = lastAuction(id) / hotRatio * hotRatio
	} else {
		of = r.nextAuction(id)
	}
	g.set(row, auction, value.IntValue(of+firstAuctionID))
	if g.draws < 2 {
		return
	}
	var by int64
	if r.intN(hotBiddersRatio) > 0 {
		// The second of the batch: hot bidders are not hot sellers.
		by = lastPerson(id)/hotRatio*hotRatio + 1
	} else {
		by = r.nextPerson(id)
	}
	g.set(row, bidder, value.IntValue(by+firstPersonID))
	if g.draws < 3 {
		return
	}
	g.set(row, price, value.IntValue(r.price()))
	if g.draws < 4 {
		return
	}
	var ch channel
	if r.intN(hotChannelsRatio) > 0 {
		ch = hotChannels()[r.intN(int32(len(hotChannelNames)))]
	} else {
		ch = channelTable()[r.intN(channels)]
	}
	g.set(row, channelName, value.StringValue(ch.name))
	g.set(row, url, value.StringValue(ch.url))
	if g.draws < 5 {
		return
	}
	g.set(row, extra, value.StringValue(r.extra(8*4, avgBidBytes, g.reads(extra))))
}

// lastPerson is the base-0 id of the last person made at or before event
// n.
func lastPerson(n int64) int64 {
	epoch, offset := n/totalProportion, n%totalProportion
	if offset >= personProportion {
		offset = personProportion - 1
	}
	return epoch*personProportion + offset
}

// lastAuction is the base-0 id of the last auction made at or before
// event n.
func lastAuction(n int64) int64 {
	epoch, offset := n/totalProportion, n%totalProportion
	switch {
	case offset < personProportion:
		// About to make a person: the last auction of the epoch before.
		epoch--
		offset = auctionProportion - 1
	case offset >= personProportion+auctionProportion:
		// About to make a bid: the epoch's last auction.
		offset = auctionProportion - 1
	default:
		offset -= personProportion
	}
	return epoch*auctionProportion + offset
}

// nextPerson picks one of the active people, or one a little ahead of
// the last, whose person event then seems to come after.
func (r *javaRandom) nextPerson(n int64) int64 {
	people := lastPerson(n) + 1
	active := min(people, numActivePeople)
	return people - active + r.long(active+personIDLead)
}

// nextAuction picks one of the auctions likely still open, or one a
// little ahead of the last.
func (r *javaRandom) nextAuction(n int64) int64 {
	last := lastAuction(n)
	least := max(last-numInFlightAuctions, 0)
	return least + r.long(last-least+1+auctionIDLead)
}

// auctionLength is an auction's length in milliseconds: twice, on
// average, the time until numInFlightAuctions more auctions are made.
func (r *javaRandom) auctionLength(n, ts int64) int64 {
	const eventsForAuctions = numInFlightAuctions * totalProportion / auctionProportion
	horizon := timestamp(n+eventsForAuctions) - ts
	return 1 + r.long(max(horizon*2, 1))
}

// long is the suites' nextLong(random, n): uniform below n while n fits
// an int, and, as theirs, skewed beyond.
func (r *javaRandom) long(n int64) int64 {
	if n < math.MaxInt32 {
		return int64(r.intN(int32(n)))
	}
	v := r.int64() % n
	if v < 0 {
		v = -v
	}
	return v
}

// price is a price in cents, spread evenly over the orders of magnitude
// from 1 to 1,000,000 dollars.
func (r *javaRandom) price() int64 {
	return int64(math.Floor(math.Pow(10, r.float64()*6)*100 + 0.5)) // Java's Math.round
}

// str is the suites' nextString: 3 to maxLength-1 letters, one in 13 of
// them special, trimmed of spaces as Java's trim does. It draws the same
// whether or not it keeps the string: the length is needed either way.
func (r *javaRandom) str(maxLength int32, special byte, keep bool) (string, int) {
	n := minStringLength + r.intN(maxLength-minStringLength)
	var b []byte
	if keep {
		b = make([]byte, 0, n)
	}
	first, last := -1, -1 // of the letters that trim keeps
	for k := range int(n) {
		c := special
		if !r.oneIn13() {
			c = r.letter()
		}
		if c > ' ' {
			if first < 0 {
				first = k
			}
			last = k
		}
		if keep {
			b = append(b, c)
		}
	}
	if first < 0 {
		return "", 0
	}
	if keep {
		b = b[first : last+1]
		return format.BytesString(b), len(b) // b is not used again
	}
	return "", last + 1 - first
}

// extra is the suites' nextExtra: letters that bring an event of size
// bytes to about avg.
func (r *javaRandom) extra(size, avg int, keep bool) string {
	if size > avg {
		return ""
	}
	avg -= size
	delta := int(math.Floor(float64(avg)*0.2 + 0.5))
	n := avg - delta
	if delta != 0 {
		n += int(r.intN(int32(2 * delta)))
	}
	return r.exact(n, keep)
}

// exact is the suites' nextExactString: n characters, six from each
// nextInt(), 'a' plus its remainder by 26, then the quotient's. The int
// is signed, so some are the characters before 'a', 'H' to '`'.
func (r *javaRandom) exact(n int, keep bool) string {
	if n <= 0 {
		return ""
	}
	if !keep {
		// The draws alone, one per six characters.
		r.skip((n + 5) / 6)
		return ""
	}
	b := make([]byte, n)
	var x int32
	left := 0
	for k := range n {
		if left == 0 {
			x, left = r.next(32), 6
		}
		b[k] = byte('a' + x%26)
		x /= 26
		left--
	}
	return format.BytesString(b) // b is not used again
}

// channel is a bid's channel and its URL.
type channel struct{ name, url string }

var hotChannelNames = [...]string{"Google", "Facebook", "Baidu", "Apple"}

// baseURL is a channel's URL before its id.
func baseURL(r *javaRandom) string {
	a, _ := r.str(5, '_', true)
	b, _ := r.str(5, '_', true)
	c, _ := r.str(5, '_', true)
	return "https://www.nexmark.com/" + a + "/" + b + "/" + c + "/item.htm?query=1"
}

// channelTable is the name and URL of every channel but the hot ones. The
// suites draw a channel's URL, and whether it names the channel's id,
// from unseeded Randoms; here from one seeded with the channel's number,
// so that runs agree.
var channelTable = sync.OnceValue(func() []channel {
	t := make([]channel, channels)
	for n := range t {
		r := newJavaRandom(int64(n))
		url := baseURL(&r)
		if r.intN(10) > 0 {
			url += "&channel_id=" + strconv.FormatInt(int64(abs32(reverse32(int32(n)))), 10)
		}
		t[n] = channel{name: "channel-" + strconv.Itoa(n), url: url}
	}
	return t
})

// hotChannels are the four hot channels. The suites draw their URLs from
// an unseeded Random; here they are seeded with -1 to -4, so that runs
// agree.
var hotChannels = sync.OnceValue(func() []channel {
	t := make([]channel, len(hotChannelNames))
	for k, name := range hotChannelNames {
		r := newJavaRandom(int64(-1 - k))
		t[k] = channel{name: name, url: baseURL(&r)}
	}
	return t
})

// reverse32 is Java's Integer.reverse.
func reverse32(v int32) int32 {
	u := uint32(v)
	var out uint32
	for range 32 {
		out = out<<1 | u&1
		u >>= 1
	}
	return int32(out)
}

// abs32 is Java's Math.abs of an int, which leaves MinInt32 as it is.
func abs32(v int32) int32 {
	if v < 0 {
		return -v
	}
	return v
}

var (
	firstNames = [...]string{"Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"}
	lastNames  = [...]string{"Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"}
	usStates   = [...]string{"AZ", "CA", "ID", "OR", "WA", "WY"}
	usCities   = [...]string{"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"}
)
