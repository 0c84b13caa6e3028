// Package loadgen is the client side of wsroom's end-to-end benchmarks: a
// process of its own that holds many real WebSocket client connections
// (gws clients, one read goroutine each), so that the benchmark process,
// the server, pays for none of the clients' work and its CPU time and
// memory are the server's alone.
//
// The connections are split evenly between Config.Rooms rooms: connection
// c dials URL?room=r<k>&id=<i>, k = c / size and i = c % size, size the
// members per room. The server under test joins it to room r<k> as member
// i (the chat contract; see bench_hubs_test.go in the module's root).
//
// The client process is the test binary itself, started again by Start
// with its configuration in the environment; TestMain calls Main first,
// which runs the client process and exits when the environment says so.
// The two processes talk over the child's stdin and stdout, one line per
// command or report:
//
//	benchmark → clients            clients → benchmark
//	dial                           hello            (started)
//	reset                          ready <n>        (n connections open and, with
//	report                                           Announce, every join announced)
//	chat <count> <window>          reset-ok         (latencies cleared)
//	(stdin closed: exit)           d <seq>          (message seq reached every connection)
//	                               chatted          (every chat message reached its room)
//	                               h <bucket> <count>, then report <cpu-ns>
//	                               err <text>       (a missing, out-of-order or unreadable
//	                                                 message, a lost connection, a failed dial)
//
// The frames the clients receive are JSON objects written as encoding/json
// writes them, "type" first:
//
//   - {"type":"message",...,"from":F,...,"seq":S,"sent":T}: a message from
//     member F of the room, or from the benchmark's publisher when F is -1.
//     S is the sender's sequence number (0, 1, 2, ... in sending order),
//     T the time it was sent or published, in Unix microseconds (both
//     processes read the same clock; a JavaScript number holds it
//     exactly). Each connection checks that every sender's messages
//     arrive in order with none missing.
//   - {"type":"joined",...,"from":F,...}: member F joined. With Announce,
//     a connection's first frame must be its own join, and the sum over
//     connections is known (each join reaches the members present and the
//     joiner): ready waits for all of them.
//
// On "chat", every connection sends count messages of its own,
// {"type":"message","text":"...","seq":S,"sent":T}, keeping window of them
// unanswered: it sends the next one when the server delivers one of its
// own back to it, as it does to every member of the room.
package loadgen

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

const (
	envURL      = "WSROOM_LOADGEN_URL"
	envConns    = "WSROOM_LOADGEN_CONNS"
	envRooms    = "WSROOM_LOADGEN_ROOMS"
	envAnnounce = "WSROOM_LOADGEN_ANNOUNCE"
	envDeflate  = "WSROOM_LOADGEN_DEFLATE"

	// Ring is how many messages the client process tracks at once: a
	// publisher must keep fewer than Ring messages outstanding.
	Ring = 1 << 12

	dialWorkers = 8
	maxErrors   = 10 // error lines sent before the client process goes quiet

	// lifetime bounds the client process whatever happens to the
	// benchmark; it also exits as soon as its stdin closes.
	lifetime = 15 * time.Minute
	// joinWait bounds how long ready waits for the join announcements
	// once every connection is open.
	joinWait = 5 * time.Minute
)

// Config says what the client process holds.
type Config struct {
	URL      string // ws://host:port/path, without a query
	Conns    int    // connections, a multiple of Rooms
	Rooms    int    // rooms the connections are split between; 0 means 1
	Announce bool   // the server announces each join to its room
	Deflate  Deflate
}

// Deflate says whether the clients offer permessage-deflate.
type Deflate int

const (
	NoDeflate Deflate = iota
	// OfferDeflate offers it as browsers do and inflates what comes
	// compressed: gws's client holds a compressor for each connection,
	// about 0.8 MiB.
	OfferDeflate
	// OfferDeflateOnly offers it, without the means to inflate: for
	// connections that receive nothing compressed, such as idle ones.
	OfferDeflateOnly
)

func (cfg Config) env() []string {
	return []string{
		envURL + "=" + cfg.URL,
		envConns + "=" + strconv.Itoa(cfg.Conns),
		envRooms + "=" + strconv.Itoa(max(cfg.Rooms, 1)),
		envAnnounce + "=" + strconv.FormatBool(cfg.Announce),
		envDeflate + "=" + strconv.Itoa(int(cfg.Deflate)),
	}
}

func configFromEnv() (Config, error) {
	cfg := Config{URL: os.Getenv(envURL)}
	var err1, err2, err3, err4 error
	var deflate int
	cfg.Conns, err1 = strconv.Atoi(os.Getenv(envConns))
	cfg.Rooms, err2 = strconv.Atoi(os.Getenv(envRooms))
	cfg.Announce, err3 = strconv.ParseBool(os.Getenv(envAnnounce))
	deflate, err4 = strconv.Atoi(os.Getenv(envDeflate))
	cfg.Deflate = Deflate(deflate)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return cfg, err
	}
	if cfg.Conns <= 0 || cfg.Rooms <= 0 || cfg.Conns%cfg.Rooms != 0 {
		return cfg, fmt.Errorf("%d connections in %d rooms", cfg.Conns, cfg.Rooms)
	}
	return cfg, nil
}

// Main runs the client process and exits, if this process was started as
// one by Start; otherwise it returns at once. Call it first in TestMain.
func Main() {
	if os.Getenv(envURL) == "" {
		return
	}
	cfg, err := configFromEnv()
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: bad configuration: %v\n", err)
		os.Exit(2)
	}
	time.AfterFunc(lifetime, func() {
		fmt.Fprintln(os.Stderr, "loadgen: lifetime exceeded, exiting")
		os.Exit(3)
	})
	c := newClients(cfg)
	c.serve(os.Stdin)
	os.Exit(0)
}
