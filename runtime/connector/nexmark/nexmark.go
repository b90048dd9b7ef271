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
	// cols are, for each column of a row, its index in kind's schema, or
	// -1 for a column left NULL (not read).
	cols []int
	// read says which columns are read: the strings of the others are
	// drawn, since the fields after them depend on the draws, but not
	// made.
	read [10]bool
}

// New returns the generator of kind's events into rows of cols, indexes
// of kind's schema; a column of index -1 is left NULL.
func New(kind Kind, cols []int) (*Generator, error) {
	g := &Generator{kind: kind, cols: cols}
	schema := kind.Columns()
	for _, c := range cols {
		if c == -1 {
			continue
		}
		if c < 0 || c >= len(schema) {
			return nil, fmt.Errorf("nexmark: no column %d in the %d of the %s events", c, len(schema), kind)
		}
		g.read[c] = true
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
		for k, c := range g.cols {
			switch c {
			case 0:
				row[k] = value.IntValue(i)
			case 1:
				row[k] = value.StringValue(strconv.FormatInt(i, 10))
			}
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

func (g *Generator) person(r *javaRandom, id, ts int64, row value.Row) {
	const name, email, card, city, state, extra = 1, 2, 3, 4, 5, 7
	first, last := firstNames[r.intN(int32(len(firstNames)))], lastNames[r.intN(int32(len(lastNames)))]
	var fullName string
	if g.read[name] {
		fullName = first + " " + last
	}
	user, userLen := r.str(7, ' ', g.read[email])
	host, hostLen := r.str(5, ' ', g.read[email])
	var address string
	if g.read[email] {
		address = user + "@" + host + ".com"
	}
	var digits [4]int32
	for k := range digits {
		digits[k] = r.intN(10_000)
	}
	var creditCard string
	if g.read[card] {
		b := make([]byte, 0, 19)
		for k, d := range digits {
			if k > 0 {
				b = append(b, ' ')
			}
			b = append(b, byte('0'+d/1000), byte('0'+d/100%10), byte('0'+d/10%10), byte('0'+d%10))
		}
		creditCard = format.BytesString(b) // b is not used again
	}
	c := usCities[r.intN(int32(len(usCities)))]
	s := usStates[r.intN(int32(len(usStates)))]
	size := 8 + len(first) + 1 + len(last) + userLen + 1 + hostLen + 4 + 19 + len(c) + len(s)
	more := r.extra(size, avgPersonBytes, g.read[extra])
	for k, col := range g.cols {
		switch col {
		case 0:
			row[k] = value.IntValue(lastPerson(id) + firstPersonID)
		case name:
			row[k] = value.StringValue(fullName)
		case email:
			row[k] = value.StringValue(address)
		case card:
			row[k] = value.StringValue(creditCard)
		case city:
			row[k] = value.StringValue(c)
		case state:
			row[k] = value.StringValue(s)
		case 6:
			row[k] = value.TimestampValue(ts * 1e6)
		case extra:
			row[k] = value.StringValue(more)
		}
	}
}

func (g *Generator) auction(r *javaRandom, id, ts int64, row value.Row) {
	const itemName, description, extra = 1, 2, 9
	var seller int64
	if r.intN(hotSellersRatio) > 0 {
		seller = lastPerson(id) / hotRatio * hotRatio
	} else {
		seller = r.nextPerson(id)
	}
	category := firstCategory + int64(r.intN(numCategories))
	initialBid := r.price()
	expires := ts + r.auctionLength(id, ts)
	name, nameLen := r.str(20, ' ', g.read[itemName])
	desc, descLen := r.str(100, ' ', g.read[description])
	reserve := initialBid + r.price()
	more := r.extra(8+nameLen+descLen+8*5, avgAuctionBytes, g.read[extra])
	for k, col := range g.cols {
		switch col {
		case 0:
			row[k] = value.IntValue(lastAuction(id) + firstAuctionID)
		case itemName:
			row[k] = value.StringValue(name)
		case description:
			row[k] = value.StringValue(desc)
		case 3:
			row[k] = value.IntValue(initialBid)
		case 4:
			row[k] = value.IntValue(reserve)
		case 5:
			row[k] = value.TimestampValue(ts * 1e6)
		case 6:
			row[k] = value.TimestampValue(expires * 1e6)
		case 7:
			row[k] = value.IntValue(seller + firstPersonID)
		case 8:
			row[k] = value.IntValue(category)
		case extra:
			row[k] = value.StringValue(more)
		}
	}
}

func (g *Generator) bid(r *javaRandom, id, ts int64, row value.Row) {
	const extra = 6
	var auction int64
	if r.intN(hotAuctionRatio) > 0 {
		auction = lastAuction(id) / hotRatio * hotRatio
	} else {
		auction = r.nextAuction(id)
	}
	var bidder int64
	if r.intN(hotBiddersRatio) > 0 {
		// The second of the batch: hot bidders are not hot sellers.
		bidder = lastPerson(id)/hotRatio*hotRatio + 1
	} else {
		bidder = r.nextPerson(id)
	}
	price := r.price()
	var ch channel
	if r.intN(hotChannelsRatio) > 0 {
		ch = hotChannels()[r.intN(int32(len(hotChannelNames)))]
	} else {
		ch = channelTable()[r.intN(channels)]
	}
	more := r.extra(8*4, avgBidBytes, g.read[extra])
	for k, col := range g.cols {
		switch col {
		case 0:
			row[k] = value.IntValue(auction + firstAuctionID)
		case 1:
			row[k] = value.IntValue(bidder + firstPersonID)
		case 2:
			row[k] = value.IntValue(price)
		case 3:
			row[k] = value.StringValue(ch.name)
		case 4:
			row[k] = value.StringValue(ch.url)
		case 5:
			row[k] = value.TimestampValue(ts * 1e6)
		case extra:
			row[k] = value.StringValue(more)
		}
	}
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
