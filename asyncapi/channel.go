package asyncapi

import (
	"strings"
	"unicode"
)

// A Describer is what a document needs of an endpoint: the JSON Schemas of
// the messages it receives and sends. *wsroom.Endpoint is one.
type Describer interface {
	Schemas() (in, out []byte)
}

// Channel is one endpoint as the document describes it; Endpoint makes it.
type Channel struct {
	pattern     string
	ep          Describer
	id          string
	description string
	params      map[string]string // path parameter → description
	query       []queryParam
	token       bool
	history     bool
	errorReply  *frame // nil: the endpoint sends none
}

type queryParam struct{ name, pattern, description string }

// frame is a message the library itself sends beside the handler's Out.
type frame struct {
	name, summary string
	schema        []byte
}

// errorReplySchema is the shape of wsroom's default error reply,
// {"type":"error","error":"<reason>"}; a test checks it against a real
// endpoint's reply.
const errorReplySchema = `{"type":"object","additionalProperties":false,"required":["type","error"],` +
	`"properties":{"type":{"const":"error"},"error":{"type":"string",` +
	`"description":"why the message was rejected; it names the offending field"}}}`

// epochPattern is what wsroom's epochs are made of, in the notice and in
// recorded messages alike.
const epochPattern = "^[A-Za-z0-9_-]{1,64}$"

// recoveryNoticeSchema is the shape of wsroom's recovery notice,
// {"type":"recovery","recovered":true,"epoch":"...","missed":3}; a test
// checks it against a real endpoint's notices.
const recoveryNoticeSchema = `{"type":"object","additionalProperties":false,` +
	`"required":["type","recovered","epoch","missed"],"properties":{` +
	`"type":{"const":"recovery"},` +
	`"recovered":{"type":"boolean","description":"true: the missed recorded messages follow, then the live stream; false: the history no longer covers the gap (or is another epoch's), nothing is replayed and the stream is a fresh join's"},` +
	`"epoch":{"type":"string","pattern":"` + epochPattern + `","description":"the room's current epoch"},` +
	`"missed":{"type":"integer","minimum":0,"description":"how many recorded messages follow, replayed; 0 when not recovered"}}}`

// An Option adds to what the document says of one endpoint.
type Option func(*Channel)

// Endpoint describes ep mounted at pattern, the pattern given to the
// net/http mux ("GET /chat/room/{roomId}"). By default the endpoint sends
// wsroom's default error reply beside Out (see ErrorReply).
func Endpoint(pattern string, ep Describer, opts ...Option) Channel {
	c := Channel{pattern: pattern, ep: ep, params: map[string]string{}, errorReply: &frame{
		name:    "wsroomErrorReply",
		summary: "The reply to an invalid message, sent to its sender alone (wsroom.InvalidReply).",
		schema:  []byte(errorReplySchema),
	}}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// ID names the channel in the document (a key of "channels", and the
// prefix of its operations). Default: the address's words in camel case,
// "chatRoomRoomId" for "/chat/room/{roomId}".
func ID(id string) Option { return func(c *Channel) { c.id = id } }

// Description describes the channel.
func Description(s string) Option { return func(c *Channel) { c.description = s } }

// Param describes a path parameter of the pattern.
func Param(name, description string) Option {
	return func(c *Channel) { c.params[name] = description }
}

// Query documents a query parameter the upgrade request may carry (in the
// channel's WebSocket binding).
func Query(name, description string) Option {
	return func(c *Channel) { c.query = append(c.query, queryParam{name: name, description: description}) }
}

// History says the endpoint's rooms record what they publish
// (wsroom.WithHistory), so the endpoint speaks wsroom's recovery
// protocol: it sends recorded messages, Out with their position in front
// (a message named after Out's, with "Recorded" appended), and the
// recovery notice; the upgrade request's query may carry the position to
// resume after (wsroom.QuerySince, wsroom.QueryEpoch).
func History() Option { return func(c *Channel) { c.history = true } }

// TokenAuth says the endpoint's guard is wsroom.RequireToken: a bearer
// token in the Authorization header or, for browsers, in the token query
// parameter; either one is enough.
func TokenAuth() Option { return func(c *Channel) { c.token = true } }

// ErrorReply replaces the default error reply's schema by the schema of
// what the endpoint's wsroom.WithErrorReply function returns; name is the
// message's name in the document ("errorReply" if empty). An empty schema
// says the endpoint sends no error reply (wsroom.InvalidClose or
// wsroom.InvalidYield).
func ErrorReply(name string, schema []byte) Option {
	if name == "" {
		name = "errorReply"
	}
	return func(c *Channel) {
		c.errorReply = nil
		if len(schema) > 0 {
			c.errorReply = &frame{name: name, summary: "The reply to an invalid message, sent to its sender alone.", schema: schema}
		}
	}
}

// libraryFrames are the messages the library itself sends on the
// endpoint, beside Out: the error reply, and the recovery notice of an
// endpoint with History. Presence frames join this list as the library
// grows them.
func (c *Channel) libraryFrames() []frame {
	var fs []frame
	if c.errorReply != nil {
		fs = append(fs, *c.errorReply)
	}
	if c.history {
		fs = append(fs, frame{
			name:    "wsroomRecoveryNotice",
			summary: "The answer to an upgrade that asked to resume (since, epoch): whether what was missed follows.",
			schema:  []byte(recoveryNoticeSchema),
		})
	}
	return fs
}

// defaultID is the address's words in camel case.
func defaultID(addr string) string {
	words := strings.FieldsFunc(addr, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	var b strings.Builder
	for i, w := range words {
		if i > 0 {
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		b.WriteString(w)
	}
	if b.Len() == 0 {
		return "root"
	}
	return b.String()
}
