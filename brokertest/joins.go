package brokertest

import (
	"fmt"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// JoinThenPublish checks that a join is visible across processes as soon
// as it returns: on two instances joined by the pair's brokers, a client
// joins a room new to both on B, and the moment its subscription has
// returned, A publishes to the room; the client must receive that message
// next. Nothing is retried and no probe goes first. Each of the rounds
// uses a fresh room, which the client then leaves. It reports how long
// the rounds took.
//
// The client learns that the subscription has returned from its own
// first message: the instance's handler reads it only after Subscribe
// returns, and publishes it to the room, which delivers it locally.
func JoinThenPublish(t *testing.T, pair Pair, rounds int) {
	a, b := pair(t)
	A, B := StartInstance(t, a), StartInstance(t, b)
	start := time.Now()
	var slowest time.Duration
	for i := range rounds {
		room := fmt.Sprintf("join-%d", i)
		joined := time.Now()
		c := wstest.Dial(t, B.URL+"/"+room)
		hello := Msg{From: "joiner", Seq: i}
		c.Send(t, hello)
		if m := nextMsg(t, c); m != hello {
			t.Fatalf("round %d: the joiner got %+v, want its own %+v first", i, m, hello)
		}
		took := time.Since(joined)
		slowest = max(slowest, took)
		if took >= wsroom.BrokerReadyTimeout {
			t.Fatalf("round %d: joining took %v: the broker never confirmed the subscription", i, took)
		}
		want := Msg{From: "a", Seq: i}
		if err := A.Rooms.Room(room).Publish(want); err != nil {
			t.Fatalf("round %d: publish on A: %v", i, err)
		}
		if m := nextMsg(t, c); m != want {
			t.Fatalf("round %d: the joiner on B got %+v, want A's %+v: a publish right after the join was lost", i, m, want)
		}
		c.Close()
	}
	t.Logf("%d rounds of join on B then publish on A in %v (slowest join %v)", rounds, time.Since(start), slowest)
}

// nextMsg returns the next message c receives, failing the test after
// wstest.Timeout.
func nextMsg(t testing.TB, c *Client) Msg {
	t.Helper()
	var m Msg
	c.JSON(t, &m)
	return m
}
