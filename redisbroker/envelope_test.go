package redisbroker

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

const testOrigin = "0123456789abcdef"

func TestEnvelopeCarriesOriginAndPayloadUnchanged(t *testing.T) {
	payloads := [][]byte{
		nil,
		[]byte(`{"from":"a","text":"héllo \u263a"}`),
		[]byte("\xff\xfe not utf-8"),
		[]byte("wsr1:" + testOrigin + ":nested envelope"),
		{0, ':', '\n', 0},
		bytes.Repeat([]byte("x"), 1<<16),
	}
	for _, p := range payloads {
		env := appendEnvelope(nil, testOrigin, p)
		if got := string(env[:headerLen]); got != "wsr1:"+testOrigin+":" {
			t.Fatalf("header %q", got)
		}
		origin, payload, ok := openEnvelope(string(env))
		if !ok || origin != testOrigin || payload != string(p) {
			t.Fatalf("open(%q) = %q, %q, %v; want the origin and the payload unchanged", env, origin, payload, ok)
		}
	}
}

func TestEnvelopeAppendsToDst(t *testing.T) {
	env := appendEnvelope([]byte("pre"), testOrigin, []byte("{}"))
	if string(env) != "prewsr1:"+testOrigin+":{}" {
		t.Fatalf("got %q", env)
	}
}

func TestMalformedEnvelopesAreRefused(t *testing.T) {
	full := "wsr1:" + testOrigin + ":{}"
	bad := []string{
		"",
		`{"from":"a"}`, // a plain client's JSON
		"wsr1",
		"wsr1:",
		"wsr1:" + testOrigin,          // no separator
		"wsr1:" + testOrigin + "{}",   // separator missing, payload follows
		"wsr1:0123456789ABCDEF:{}",    // not lowercase hex
		"wsr1:0123456789abcdeg:{}",    // not hex
		"wsr1:0123456789abcde:{}",     // origin too short
		"wsr2:" + testOrigin + ":{}",  // another format
		"WSR1:" + testOrigin + ":{}",  // magic is case-sensitive
		" wsr1:" + testOrigin + ":{}", // leading space
		"\xff\xfe\x00",
	}
	for i := range headerLen { // every truncation of the header
		bad = append(bad, full[:i])
	}
	for _, m := range bad {
		if o, p, ok := openEnvelope(m); ok {
			t.Errorf("open(%q) = %q, %q, true; want refused", m, o, p)
		}
	}
	if _, p, ok := openEnvelope(full[:headerLen]); !ok || p != "" {
		t.Errorf("a header with an empty payload must open (wsroom validates the payload): %q %v", p, ok)
	}
}

func TestOriginsAreDistinctHexOfTheRightLength(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		b := offline(t)
		if len(b.origin) != originLen || strings.Trim(b.origin, "0123456789abcdef") != "" {
			t.Fatalf("origin %q", b.origin)
		}
		if seen[b.origin] {
			t.Fatalf("origin %q drawn twice", b.origin)
		}
		seen[b.origin] = true
		if _, _, ok := openEnvelope(string(b.header)); !ok {
			t.Fatalf("header %q does not open", b.header)
		}
	}
}

func TestChannelIsPrefixColonRoom(t *testing.T) {
	b := offline(t, WithPrefix("app"))
	for room, want := range map[string]string{"": "app:", "*": "app:*", "a:b": "app:a:b", "[abc]": "app:[abc]"} {
		if got := b.channel(room); got != want {
			t.Errorf("channel(%q) = %q, want %q", room, got, want)
		}
	}
	if got := offline(t).channel("r"); got != "wsroom:r" {
		t.Errorf("default channel %q", got)
	}
}

func FuzzOpenEnvelope(f *testing.F) {
	f.Add("wsr1:" + testOrigin + ":{}")
	f.Add("wsr1:" + testOrigin)
	f.Add(`{"a":1}`)
	f.Fuzz(func(t *testing.T, m string) {
		origin, payload, ok := openEnvelope(m)
		if !ok {
			return
		}
		if string(appendEnvelope(nil, origin, []byte(payload))) != m {
			t.Fatalf("%q opens to %q, %q, which do not make it again", m, origin, payload)
		}
	})
}

func TestRecordedEnvelopeIsParsedStrictly(t *testing.T) {
	good := map[string]struct {
		epoch   string
		offset  uint64
		payload string
	}{
		"wsh1:e:1:{}":                              {"e", 1, "{}"},
		"wsh1:ab-_Z9:18446744073709551615:":        {"ab-_Z9", 18446744073709551615, ""},
		"wsh1:e:42:a:b:c":                          {"e", 42, "a:b:c"},
		"wsh1:" + strings.Repeat("x", 64) + ":7:x": {strings.Repeat("x", 64), 7, "x"},
	}
	for msg, want := range good {
		e, o, p, ok := openRecorded(msg)
		if !ok || e != want.epoch || o != want.offset || p != want.payload {
			t.Errorf("%q: %q %d %q %v, want %+v", msg, e, o, p, ok, want)
		}
	}
	for _, msg := range []string{
		"", "wsh1:", "wsh1:e", "wsh1:e:", "wsh1:e:1", "wsh1::1:{}", "wsh1:e:0:{}", "wsh1:e:01:{}",
		"wsh1:e:-1:{}", "wsh1:e:x:{}", "wsh1:e.f:1:{}", "wsh1:é:1:{}", "wsh1:e:18446744073709551616:{}",
		"wsh1:" + strings.Repeat("x", 65) + ":1:{}", "wsr1:e:1:{}",
	} {
		if _, _, _, ok := openRecorded(msg); ok {
			t.Errorf("%q parsed as a recorded envelope", msg)
		}
	}
}

// offline returns a Broker on a client that is never used: New does no
// I/O.
func offline(t *testing.T, opts ...Option) *Broker {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = client.Close() })
	b, err := New(context.Background(), client, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
