package client_test

import (
	"errors"
	"iter"
	"testing"

	"github.com/wsroom/wsroom/client"
	"github.com/wsroom/wsroom/internal/wstest"
)

// Strict is a stricter view of Out than the server's: two types only, no
// other field.
type Strict struct {
	Type string `json:"type" jsonschema:"enum=joined,enum=echo"`
	Text string `json:"text,omitempty"`
}

// WithValidation checks each message against Recv's reflected schema: a
// message that breaks it is yielded as an InvalidMessageError and the
// range goes on; a recorded message's position fields are not Recv's and
// do not break it.
func TestValidationYieldsInvalidMessagesAndGoesOn(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := newServer(t, 100)
	c, err := client.Dial[In, Strict](deadline(t), srv.url("strict"), client.WithValidation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pull, stop := iter.Pull2(c.Messages())
	defer stop()
	if m, err, _ := pull(); err != nil || m.Type != "joined" {
		t.Fatalf("joined, recorded: %+v, %v", m, err)
	}
	_ = c.Send(In{Text: "big 3"}) // {"type":"big",...}: not in the enum
	_ = c.Send(In{Text: "after"})
	var inv *client.InvalidMessageError
	if _, err, _ := pull(); !errors.As(err, &inv) || string(inv.Data) != `{"type":"big","text":"xxx"}` {
		t.Fatalf("the big message: %v, want an InvalidMessageError with its frame", err)
	}
	if m, err, _ := pull(); err != nil || m.Text != "after" {
		t.Fatalf("after the invalid one: %+v, %v", m, err)
	}
}

// WithSchema checks messages against the schema given, the endpoint's
// own for instance.
func TestWithSchemaValidatesAgainstTheSchemaGiven(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := newServer(t, 100)
	_, out := srv.ep.Schemas()
	c := dial(t, deadline(t), srv.url("schema"), client.WithSchema(out))
	next := messages(t, c)
	next() // joined passes the endpoint's own schema
	strict := dial(t, deadline(t), srv.url("schema"), client.WithSchema([]byte(`{"type":"object","required":["text"]}`)))
	for _, err := range strict.Messages() {
		var inv *client.InvalidMessageError
		if !errors.As(err, &inv) {
			t.Fatalf("joined, without text: %v, want an InvalidMessageError", err)
		}
		break
	}
	if _, err := client.Dial[In, Out](deadline(t), srv.url("schema"), client.WithSchema([]byte(`{"type":`))); err == nil {
		t.Fatal("Dial with a schema that is not JSON: no error")
	}
}
