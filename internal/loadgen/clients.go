package loadgen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
)

// clients is the state of the client process.
type clients struct {
	cfg  Config
	size int // members per room

	outMu sync.Mutex
	out   []byte // line buffer, under outMu

	conns   []*conn
	hist    Histogram
	pending [Ring]atomic.Int32 // receipts per publisher message, by seq % Ring
	closing atomic.Bool
	errs    atomic.Int32

	joins     atomic.Int64  // join announcements received, all connections
	joinsDone chan struct{} // closed when joins reaches wantJoins
	wantJoins int64

	chatGot  atomic.Int64 // chat deliveries since the last chat command
	chatWant atomic.Int64 // what chatGot reaches when it is done
}

func newClients(cfg Config) *clients {
	size := cfg.Conns / cfg.Rooms
	return &clients{
		cfg:       cfg,
		size:      size,
		joinsDone: make(chan struct{}),
		wantJoins: int64(cfg.Rooms) * int64(size) * int64(size+1) / 2,
	}
}

// serve runs the command loop until stdin closes.
func (c *clients) serve(stdin io.Reader) {
	c.say("hello")
	var cpu0 time.Duration
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "dial":
			if err := c.dial(); err != nil {
				c.fail("dial: %v", err)
				continue
			}
			c.say("ready " + strconv.Itoa(c.cfg.Conns))
		case "reset":
			c.hist.Reset()
			cpu0 = CPUTime()
			c.say("reset-ok")
		case "report":
			cpu := CPUTime() - cpu0
			for i := range c.hist.buckets {
				if v := c.hist.buckets[i].Load(); v != 0 {
					c.say("h " + strconv.Itoa(i) + " " + strconv.FormatInt(v, 10))
				}
			}
			c.say("report " + strconv.FormatInt(int64(cpu), 10))
		case "chat":
			if err := c.chat(f[1:]); err != nil {
				c.fail("chat: %v", err)
			}
		}
	}
	// stdin closed: the benchmark is done with us, or gone. Exiting closes
	// every socket.
	c.closing.Store(true)
}

// dial opens the connections, a few at a time, and with Announce waits
// until every join has been announced to every member it should reach.
func (c *clients) dial() error {
	if c.conns != nil {
		return errors.New("dialled twice")
	}
	c.conns = make([]*conn, c.cfg.Conns)
	var next atomic.Int64
	var wg sync.WaitGroup
	var first atomic.Pointer[error]
	wg.Add(dialWorkers)
	for range dialWorkers {
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= c.cfg.Conns || first.Load() != nil {
					return
				}
				if err := c.open(i); err != nil {
					err = fmt.Errorf("connection %d: %w", i, err)
					first.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if p := first.Load(); p != nil {
		return *p
	}
	if !c.cfg.Announce {
		return nil
	}
	t := time.NewTimer(joinWait)
	defer t.Stop()
	select {
	case <-c.joinsDone:
		return nil
	case <-t.C:
		return fmt.Errorf("%d of %d join announcements within %v", c.joins.Load(), c.wantJoins, joinWait)
	}
}

// open dials connection i and starts its read loop.
func (c *clients) open(i int) error {
	h := &conn{c: c, index: i, room: i / c.size, id: i % c.size, next: make([]int64, c.size)}
	c.conns[i] = h
	url := c.cfg.URL + "?room=r" + strconv.Itoa(h.room) + "&id=" + strconv.Itoa(h.id)
	opt := &gws.ClientOption{Addr: url, HandshakeTimeout: 10 * time.Second}
	switch c.cfg.Deflate {
	case OfferDeflate:
		// Context takeover on both sides offered, as browsers do: the
		// server answers with what it wants.
		opt.PermessageDeflate = gws.PermessageDeflate{Enabled: true, ServerContextTakeover: true, ClientContextTakeover: true}
	case OfferDeflateOnly:
		opt.RequestHeader = http.Header{"Sec-Websocket-Extensions": {"permessage-deflate; client_max_window_bits"}}
	}
	s, _, err := gws.NewClient(h, opt)
	if err != nil {
		return err
	}
	h.ws = s
	go s.ReadLoop()
	return nil
}

// chat has every connection send count more messages, window at a time,
// and says "chatted" once every one has reached every member of its room.
func (c *clients) chat(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("want chat <count> <window>, got %q", args)
	}
	count, err1 := strconv.Atoi(args[0])
	window, err2 := strconv.Atoi(args[1])
	if err1 != nil || err2 != nil || count <= 0 || window <= 0 {
		return fmt.Errorf("bad count or window %q", args)
	}
	if c.conns == nil {
		return errors.New("not dialled")
	}
	c.chatGot.Store(0)
	c.chatWant.Store(int64(c.cfg.Conns) * int64(c.size) * int64(count))
	for _, h := range c.conns {
		h.sendMu.Lock()
		h.limit += int64(count)
		h.sendMu.Unlock()
	}
	for range min(window, count) {
		for _, h := range c.conns {
			h.sendNext()
		}
	}
	return nil
}

// say writes one line to the benchmark.
func (c *clients) say(line string) {
	c.outMu.Lock()
	c.out = append(append(c.out[:0], line...), '\n')
	_, _ = os.Stdout.Write(c.out)
	c.outMu.Unlock()
}

// delivered tells the benchmark that message seq reached every connection.
func (c *clients) delivered(seq int64) {
	c.outMu.Lock()
	c.out = append(strconv.AppendInt(append(c.out[:0], 'd', ' '), seq, 10), '\n')
	_, _ = os.Stdout.Write(c.out)
	c.outMu.Unlock()
}

func (c *clients) fail(format string, args ...any) {
	if c.errs.Add(1) <= maxErrors {
		c.say("err " + strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", " "))
	}
}
