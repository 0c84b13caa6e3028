package pgbroker

import (
	"strconv"
	"strings"
	"testing"
)

func TestEveryRoomNameHasAChannelPostgreSQLKeepsWhole(t *testing.T) {
	b := &Broker{prefix: strings.Repeat("p", maxPrefixLen)}
	for _, room := range []string{"", "'", `"; NOTIFY x; --`, "nul\x00", "\xff", "房间", strings.Repeat("x", 10_000)} {
		ch := b.channel(roomKey(room))
		if len(ch) > 63 || strings.Trim(ch[len(b.prefix)+1:], "0123456789abcdef") != "" {
			t.Errorf("room %.20q: channel %q is not the prefix and 32 hexadecimal digits within 63 bytes", room, ch)
		}
	}
	if roomKey("a") == roomKey("b") || roomKey("") == roomKey("\x00") {
		t.Fatal("distinct rooms share a key")
	}
}

func TestNotificationsAreParsedStrictly(t *testing.T) {
	origin := "0123456789abcdef"
	good := map[string]notice{
		"7:1:" + origin + ":{}":        {epoch: 7, off: 1, origin: origin, payload: "{}", inline: true},
		"7:2:" + origin + "::a:b:":     {epoch: 7, off: 2, origin: origin, payload: ":a:b:", inline: true},
		"7:3:" + origin + ":":          {epoch: 7, off: 3, origin: origin, payload: "", inline: true},
		"9007199254740991:4:" + origin: {epoch: 9007199254740991, off: 4, origin: origin},
	}
	for s, want := range good {
		if got, ok := parseNotice(s); !ok || got != want {
			t.Errorf("parseNotice(%q) = %+v, %v; want %+v", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "{}", "7:1", "7:1:", "x:1:" + origin, "7:x:" + origin, "7:0:" + origin, "7:-1:" + origin,
		"7:1:0123456789ABCDEF:{}", "7:1:0123:{}", "7:1:" + origin + "0:{}", "7:99999999999999999999:" + origin, "+7:1:" + origin, "7:01:" + origin, "-7:1:" + origin} {
		if n, ok := parseNotice(s); ok {
			t.Errorf("parseNotice(%q) accepted: %+v", s, n)
		}
	}
}

func TestOnlyTextThatFitsTravelsInANotification(t *testing.T) {
	cases := []struct {
		p            string
		utf8, latin1 bool
	}{
		{`{"a":1}`, true, true},
		{"héllo", true, false},
		{strings.Repeat("x", inlineMax), true, true},
		{strings.Repeat("x", inlineMax+1), false, false},
		{"nul\x00", false, false},
		{"\xff\xfe", false, false},
	}
	for _, c := range cases {
		if got := inline([]byte(c.p), true); got != c.utf8 {
			t.Errorf("inline(%.20q) in a UTF8 database = %v", c.p, got)
		}
		if got := inline([]byte(c.p), false); got != c.latin1 {
			t.Errorf("inline(%.20q) in another encoding = %v", c.p, got)
		}
	}
	if maxHeaderLen+inlineMax >= notifyLimit { // the header counts the colon before the message
		t.Fatal("the longest notification does not fit PostgreSQL's limit")
	}
}

// FuzzParseNotice checks that no notification payload panics the parser,
// and that whatever it accepts is exactly the format a publish sends.
func FuzzParseNotice(f *testing.F) {
	f.Add("7:1:0123456789abcdef:{}")
	f.Add("1:2:0123456789abcdef")
	f.Add("9007199254740991:3:0123456789abcdef::")
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := parseNotice(s)
		if !ok {
			return
		}
		again := strconv.FormatInt(n.epoch, 10) + ":" + strconv.FormatInt(n.off, 10) + ":" + n.origin
		if n.inline {
			again += ":" + n.payload
		}
		if again != s {
			t.Fatalf("parseNotice(%q) = %+v, which a publish would send as %q", s, n, again)
		}
	})
}
