package natsbroker

import (
	"strings"
	"testing"
)

// decodeToken inverts token for names that were escaped, not hashed.
func decodeToken(tok string) (name string, ok bool) {
	if tok == "%" {
		return "", true
	}
	if tok == "" || strings.HasPrefix(tok, "%%") {
		return "", false
	}
	unhex := func(c byte) (byte, bool) {
		switch {
		case '0' <= c && c <= '9':
			return c - '0', true
		case 'A' <= c && c <= 'F':
			return c - 'A' + 10, true
		}
		return 0, false
	}
	var b []byte
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c != '%' {
			if !plain(c) {
				return "", false
			}
			b = append(b, c)
			continue
		}
		if i+2 >= len(tok) {
			return "", false
		}
		hi, ok1 := unhex(tok[i+1])
		lo, ok2 := unhex(tok[i+2])
		if !ok1 || !ok2 {
			return "", false
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	return string(b), true
}

// checkToken fails the test unless name's token is one safe subject
// token that decodes back to name (or is a hash, for long names).
func checkToken(t *testing.T, name string) string {
	t.Helper()
	tok := token(name)
	if tok == "" {
		t.Fatalf("token(%q) is empty", name)
	}
	if len(tok) > maxTokenLen {
		t.Fatalf("token(%q) is %d bytes, over %d", name, len(tok), maxTokenLen)
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; !plain(c) && c != '%' {
			t.Fatalf("token(%q) = %q holds %q", name, tok, c)
		}
	}
	if strings.HasPrefix(tok, "%%") {
		if n := 2 + 43; len(tok) != n {
			t.Fatalf("hashed token(%q) = %q, want %d bytes", name, tok, n)
		}
		return tok
	}
	if got, ok := decodeToken(tok); !ok || got != name {
		t.Fatalf("token(%q) = %q decodes to %q (%v)", name, tok, got, ok)
	}
	return tok
}

func TestTokenExamples(t *testing.T) {
	for name, want := range map[string]string{
		"lobby":        "lobby",
		"Room-1_a":     "Room-1_a",
		"":             "%",
		"a.b":          "a%2Eb",
		"*":            "%2A",
		">":            "%3E",
		"a.>":          "a%2E%3E",
		"a b":          "a%20b",
		"tab\t":        "tab%09",
		"%":            "%25",
		"%2A":          "%252A",
		"$SYS":         "%24SYS",
		"ü":            "%C3%BC",
		"\xff":         "%FF",
		"\x00":         "%00",
		"room:1/x":     "room%3A1%2Fx",
		"_INBOX.reply": "_INBOX%2Ereply",
	} {
		if got := token(name); got != want {
			t.Errorf("token(%q) = %q, want %q", name, got, want)
		}
		checkToken(t, name)
	}
}

// Every name, however hostile, becomes one safe token of its own.
func TestTokensAreSafeAndDistinct(t *testing.T) {
	seen := map[string]string{}
	add := func(name string) {
		tok := checkToken(t, name)
		if other, dup := seen[tok]; dup && other != name {
			t.Fatalf("%q and %q share token %q", other, name, tok)
		}
		seen[tok] = name
	}
	add("")
	for a := range 256 {
		add(string([]byte{byte(a)}))
		for b := range 256 {
			add(string([]byte{byte(a), byte(b)}))
		}
	}
	for _, name := range []string{"%%", "%25", "%2525", "%%41", "a%", "%a", "%4", strings.Repeat("%", 100)} {
		add(name)
	}
	// Around the length limit, plain and escaped, and long names that
	// differ only at the end.
	for n := maxTokenLen - 2; n <= maxTokenLen+2; n++ {
		add(strings.Repeat("x", n))
		add(strings.Repeat(".", n/3))
		add(strings.Repeat(".", n/3) + "x")
		add(strings.Repeat("x", n-1) + ".")
	}
	for _, long := range []string{strings.Repeat("long", 100), strings.Repeat("x", 1<<20)} {
		add(long)
		add(long + "!")
		add(long[:len(long)-1] + "y")
	}
}

func TestLongNamesAreHashed(t *testing.T) {
	if tok := token(strings.Repeat("x", maxTokenLen)); tok != strings.Repeat("x", maxTokenLen) {
		t.Fatalf("a plain name of %d bytes was not kept: %q", maxTokenLen, tok)
	}
	for _, name := range []string{strings.Repeat("x", maxTokenLen+1), strings.Repeat(".", maxTokenLen/3+1)} {
		if tok := token(name); !strings.HasPrefix(tok, "%%") {
			t.Fatalf("token of a %d-byte name is %q, want a hash", len(name), tok)
		}
	}
}

func FuzzToken(f *testing.F) {
	for _, s := range []string{"", "plain", "a.b", "*", ">", "%", "%%", "%2E", "ü", "\xff", strings.Repeat("z", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		tok := checkToken(t, name)
		if other := token(name + "x"); other == tok {
			t.Fatalf("%q and %q share token %q", name, name+"x", tok)
		}
	})
}

func TestValidPrefix(t *testing.T) {
	for p, want := range map[string]bool{
		"wsroom": true, "app.ws": true, "$app": true, "a-b_c.d%e": true, "A.B.C": true,
		"": false, ".": false, "a.": false, ".a": false, "a..b": false, "*": false, "a.*": false,
		">": false, "a.>": false, "a b": false, "a\tb": false, "ü": false, "a\x00": false, "a\x7f": false,
		strings.Repeat("p", maxPrefixLen): true, strings.Repeat("p", maxPrefixLen+1): false,
	} {
		if got := validPrefix(p); got != want {
			t.Errorf("validPrefix(%q) = %v, want %v", p, got, want)
		}
	}
}
