package asyncapi_test

import (
	"context"
	"encoding/json"
	"iter"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/asyncapi"
	"github.com/wsroom/wsroom/internal/asyncapitest"
)

type ClientMessage struct {
	Type    string  `json:"type" jsonschema:"enum=message,enum=typing"`
	Content *string `json:"content,omitempty"`
}

type ChatMessage struct {
	Type      string  `json:"type" jsonschema:"enum=message,enum=typing,enum=joined,enum=left"`
	Username  string  `json:"username,omitempty"`
	Content   *string `json:"content,omitempty"`
	Timestamp string  `json:"timestamp,omitempty" jsonschema:"format=date-time"`
	Sender    *Person `json:"sender,omitempty"`
}

type Person struct {
	Name string `json:"name"`
}

func idle[In, Out any](c *wsroom.Conn[Out], msgs iter.Seq2[In, error]) error {
	for _, err := range msgs {
		if err != nil {
			return err
		}
	}
	return nil
}

func verify(ctx context.Context, token string) (context.Context, error) { return ctx, nil }

// document is a document of three endpoints: a chat behind the token
// guard, a feed of strings under a rest wildcard, and a status endpoint
// that sends no error reply.
func document(t *testing.T) []byte {
	t.Helper()
	chat := wsroom.New(idle[ClientMessage, ChatMessage], wsroom.WithGuard(wsroom.RequireToken(verify)))
	feed := wsroom.New(idle[string, string])
	status := wsroom.New(idle[Person, ChatMessage], wsroom.WithInvalid(wsroom.InvalidClose))
	doc, err := asyncapi.New(asyncapi.Info{Title: "Chat", Version: "1.2.3", Description: "Rooms."},
		asyncapi.Endpoint("GET /chat/room/{roomId}", chat, asyncapi.ID("chatRoom"), asyncapi.TokenAuth(),
			asyncapi.Param("roomId", "The room to join."), asyncapi.Query("username", "The name shown to others.")),
		asyncapi.Endpoint("/feed/{topic}/{rest...}", feed, asyncapi.Description("Live lines.")),
		asyncapi.Endpoint("GET example.com/status/{$}", status, asyncapi.ErrorReply("", nil)),
	)
	if err != nil {
		t.Fatal(err)
	}
	return doc.JSON()
}

func TestDocumentIsValidAsyncAPI3(t *testing.T) {
	asyncapitest.Validate(t, document(t))
}

func TestDocumentIsAcceptedByTheAsyncAPIParser(t *testing.T) {
	asyncapitest.Parse(t, document(t))
}

// get returns the value at a path of keys in a decoded document.
func get(t *testing.T, v any, keys ...string) any {
	t.Helper()
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: not an object at %q", strings.Join(keys, "/"), k)
		}
		if v, ok = m[k]; !ok {
			t.Fatalf("%s: no key %q (have %v)", strings.Join(keys, "/"), k, keysOf(m))
		}
	}
	return v
}

func keysOf(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func refs(t *testing.T, v any) []string {
	t.Helper()
	var out []string
	for _, r := range v.([]any) {
		out = append(out, r.(map[string]any)["$ref"].(string))
	}
	return out
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestChannelAddressAndParametersComeFromTheMuxPattern(t *testing.T) {
	doc := decode(t, document(t))
	for _, tc := range []struct {
		id, address string
		params      []string
	}{
		{"chatRoom", "/chat/room/{roomId}", []string{"roomId"}},
		{"feedTopicRest", "/feed/{topic}/{rest}", []string{"rest", "topic"}},
		{"status", "/status/", nil},
	} {
		ch := get(t, doc, "channels", tc.id).(map[string]any)
		if ch["address"] != tc.address {
			t.Errorf("%s: address %v, want %s", tc.id, ch["address"], tc.address)
		}
		var params []string
		if ps, ok := ch["parameters"].(map[string]any); ok {
			params = keysOf(ps)
		}
		if !slices.Equal(params, tc.params) {
			t.Errorf("%s: parameters %v, want %v", tc.id, params, tc.params)
		}
		if m := get(t, ch, "bindings", "ws", "method"); m != "GET" {
			t.Errorf("%s: ws binding method %v, want GET", tc.id, m)
		}
	}
	if d := get(t, doc, "channels", "chatRoom", "parameters", "roomId", "description"); d != "The room to join." {
		t.Errorf("roomId's description %q", d)
	}
	if q := get(t, doc, "channels", "chatRoom", "bindings", "ws", "query", "properties", "username", "type"); q != "string" {
		t.Errorf("username query parameter of type %v", q)
	}
}

func TestOperationsReceiveInAndSendOutAndTheErrorReply(t *testing.T) {
	doc := decode(t, document(t))
	for _, tc := range []struct {
		op, action string
		messages   []string
	}{
		{"chatRoomReceive", "receive", []string{"#/channels/chatRoom/messages/ClientMessage"}},
		{"chatRoomSend", "send", []string{"#/channels/chatRoom/messages/ChatMessage", "#/channels/chatRoom/messages/wsroomErrorReply"}},
		{"feedTopicRestReceive", "receive", []string{"#/channels/feedTopicRest/messages/feedTopicRestIn"}},
		{"feedTopicRestSend", "send", []string{"#/channels/feedTopicRest/messages/feedTopicRestOut", "#/channels/feedTopicRest/messages/wsroomErrorReply"}},
		{"statusReceive", "receive", []string{"#/channels/status/messages/Person"}},
		{"statusSend", "send", []string{"#/channels/status/messages/ChatMessage"}},
	} {
		op := get(t, doc, "operations", tc.op)
		if a := get(t, op, "action"); a != tc.action {
			t.Errorf("%s: action %v, want %s", tc.op, a, tc.action)
		}
		if got := refs(t, get(t, op, "messages")); !slices.Equal(got, tc.messages) {
			t.Errorf("%s: messages %v, want %v", tc.op, got, tc.messages)
		}
	}
	// The payloads are the endpoint's own schemas, their definitions in
	// the components; a string is a schema of its own.
	if got := get(t, doc, "components", "schemas", "ClientMessage", "properties", "type", "enum"); !slices.Equal(toStrings(got), []string{"message", "typing"}) {
		t.Errorf("ClientMessage's type enum %v", got)
	}
	if got := get(t, doc, "components", "schemas", "ChatMessage", "properties", "sender", "$ref"); got != "#/components/schemas/Person" {
		t.Errorf("ChatMessage's sender refers to %v", got)
	}
	if got := get(t, doc, "components", "schemas", "feedTopicRestIn", "type"); got != "string" {
		t.Errorf("feed's In schema of type %v", got)
	}
}

func toStrings(v any) []string {
	var out []string
	for _, e := range v.([]any) {
		out = append(out, e.(string))
	}
	return out
}

func TestTokenAuthIsABearerHeaderOrATokenQueryParameter(t *testing.T) {
	doc := decode(t, document(t))
	want := []string{"#/components/securitySchemes/bearerToken", "#/components/securitySchemes/queryToken"}
	for _, op := range []string{"chatRoomReceive", "chatRoomSend"} {
		if got := refs(t, get(t, doc, "operations", op, "security")); !slices.Equal(got, want) {
			t.Errorf("%s: security %v, want %v", op, got, want)
		}
	}
	if s := get(t, doc, "components", "securitySchemes", "bearerToken", "scheme"); s != "bearer" {
		t.Errorf("bearer scheme %v", s)
	}
	q := get(t, doc, "components", "securitySchemes", "queryToken").(map[string]any)
	if q["type"] != "httpApiKey" || q["in"] != "query" || q["name"] != "token" {
		t.Errorf("query token scheme %v", q)
	}
	if _, ok := get(t, doc, "operations", "feedTopicRestReceive").(map[string]any)["security"]; ok {
		t.Error("an endpoint without TokenAuth has security")
	}
}

func TestNewRefusesWhatCannotBeMountedOrDescribed(t *testing.T) {
	type ChatMessage struct{ X int } // named as the package's, and not the same
	chat := wsroom.New(idle[ClientMessage, ChatMessage])
	other := wsroom.New(idle[ClientMessage, ChatMessageOfPackage])
	for _, tc := range []struct {
		name     string
		channels []asyncapi.Channel
		want     string
	}{
		{"invalid pattern", []asyncapi.Channel{asyncapi.Endpoint("GET /a/{", chat)}, "asyncapi:"},
		{"not a GET", []asyncapi.Channel{asyncapi.Endpoint("POST /chat", chat)}, "not POST"},
		{"same ID twice", []asyncapi.Channel{asyncapi.Endpoint("/chat", chat), asyncapi.Endpoint("GET /chat/{$}", chat)}, `two channels with ID "chat"`},
		{"unknown Param", []asyncapi.Channel{asyncapi.Endpoint("/chat/{room}", chat, asyncapi.Param("roomId", ""))}, `Param "roomId"`},
		{"one name, two schemas", []asyncapi.Channel{asyncapi.Endpoint("/a", chat), asyncapi.Endpoint("/b", other)}, `two different schemas named "ChatMessage"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := asyncapi.New(asyncapi.Info{Title: "x", Version: "1"}, tc.channels...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// ChatMessageOfPackage is the package's ChatMessage, under another name here.
type ChatMessageOfPackage = ChatMessage

func TestDocumentServesItselfAsJSON(t *testing.T) {
	doc, err := asyncapi.New(asyncapi.Info{Title: "x", Version: "1"})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	doc.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/asyncapi.json", nil))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if got := decode(t, rec.Body.Bytes())["asyncapi"]; got != "3.0.0" {
		t.Errorf("asyncapi %v, want 3.0.0", got)
	}
}
