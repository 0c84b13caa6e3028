package asyncapitest_test

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/wsroom/wsroom/internal/asyncapitest"
)

// A small valid document, and the same broken as a 2.x document would be.
const (
	valid = `{"asyncapi":"3.0.0","info":{"title":"t","version":"1"},
	"channels":{"c":{"address":"/c","messages":{"m":{"payload":{"type":"string"}}}}},
	"operations":{"o":{"action":"send","channel":{"$ref":"#/channels/c"},"messages":[{"$ref":"#/channels/c/messages/m"}]}}}`
	badAction = `{"asyncapi":"3.0.0","info":{"title":"t","version":"1"},
	"channels":{"c":{"address":"/c","messages":{"m":{"payload":{"type":"string"}}}}},
	"operations":{"o":{"action":"publish","channel":{"$ref":"#/channels/c"}}}}`
	danglingRef = `{"asyncapi":"3.0.0","info":{"title":"t","version":"1"},
	"channels":{"c":{"address":"/c","messages":{"m":{"payload":{"type":"string"}}}}},
	"operations":{"o":{"action":"send","channel":{"$ref":"#/channels/nowhere"}}}}`
)

// fakeT records a failure instead of failing the test, and ends the
// goroutine as testing.T does.
type fakeT struct {
	testing.TB
	mu      sync.Mutex
	failure string
}

func (f *fakeT) Helper() {}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.failure = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func failure(t *testing.T, check func(testing.TB, []byte), doc string) string {
	f := &fakeT{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(f, []byte(doc))
	}()
	<-done
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failure
}

func TestValidateAcceptsAValidDocumentAndRefusesAnInvalidOne(t *testing.T) {
	if got := failure(t, asyncapitest.Validate, valid); got != "" {
		t.Fatalf("valid document refused: %s", got)
	}
	if got := failure(t, asyncapitest.Validate, badAction); !strings.Contains(got, "not valid AsyncAPI 3.0.0") {
		t.Fatalf("action publish: %q, want a refusal", got)
	}
}

func TestParseAcceptsAValidDocumentAndRefusesADanglingReference(t *testing.T) {
	asyncapitest.Parse(t, []byte(valid)) // skips without the parser
	for name, doc := range map[string]string{"action publish": badAction, "dangling $ref": danglingRef} {
		if got := failure(t, asyncapitest.Parse, doc); !strings.Contains(got, "refused the document") {
			t.Errorf("%s: %q, want a refusal", name, got)
		}
	}
}
