package asyncapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
)

// Info is the document's info object: what the API is called and its
// version (of the API, not of AsyncAPI).
type Info struct {
	Title       string `json:"title"`
	Version     string `json:"version"`
	Description string `json:"description,omitempty"`
}

// Document is an AsyncAPI 3.0.0 document, built once by New. It is an
// http.Handler that serves itself as application/json.
type Document struct {
	json []byte
}

// New builds the document of the given endpoints. It fails on a pattern
// net/http would refuse, on two channels with the same ID, on a Param
// that names no wildcard of its pattern, and on two different schemas of
// the same name.
func New(info Info, channels ...Channel) (*Document, error) {
	b := &builder{
		channels: map[string]any{}, operations: map[string]any{},
		messages: map[string]any{}, schemas: map[string]any{}, security: map[string]any{},
	}
	for _, c := range channels {
		if err := b.add(c); err != nil {
			return nil, err
		}
	}
	doc := map[string]any{
		"asyncapi":           "3.0.0",
		"info":               info,
		"defaultContentType": "application/json",
		"channels":           b.channels,
		"operations":         b.operations,
	}
	components := map[string]any{"messages": b.messages, "schemas": b.schemas}
	if len(b.security) > 0 {
		components["securitySchemes"] = b.security
	}
	doc["components"] = components
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("asyncapi: %w", err)
	}
	return &Document{json: out}, nil
}

// JSON returns the document.
func (d *Document) JSON() []byte { return slices.Clone(d.json) }

// ServeHTTP serves the document.
func (d *Document) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(d.json)
}

// builder gathers the parts of a document, channel by channel.
type builder struct {
	channels, operations, messages, schemas, security map[string]any
}

// add describes one channel, its two operations and their messages.
func (b *builder) add(c Channel) error {
	addr, params, err := address(c.pattern)
	if err != nil {
		return err
	}
	id := c.id
	if id == "" {
		id = defaultID(addr)
	}
	if _, dup := b.channels[id]; dup {
		return fmt.Errorf("asyncapi: two channels with ID %q: give one another with ID", id)
	}
	ch := map[string]any{"address": addr}
	if c.description != "" {
		ch["description"] = c.description
	}
	if ps, err := parameters(c, params); err != nil {
		return err
	} else if len(ps) > 0 {
		ch["parameters"] = ps
	}
	ch["bindings"] = map[string]any{"ws": wsBinding(c.queryParams())}

	in, out := c.ep.Schemas()
	inName, err := b.message(id+"In", "", in)
	if err != nil {
		return err
	}
	outName, err := b.message(id+"Out", "", out)
	if err != nil {
		return err
	}
	sends := []string{outName}
	if c.history {
		name, err := b.recorded(outName)
		if err != nil {
			return err
		}
		sends = append(sends, name)
	}
	for _, f := range c.libraryFrames() {
		name, err := b.message(f.name, f.summary, f.schema)
		if err != nil {
			return err
		}
		sends = append(sends, name)
	}
	msgs := map[string]any{}
	for _, n := range append([]string{inName}, sends...) {
		msgs[n] = ref("#/components/messages/" + n)
	}
	ch["messages"] = msgs
	b.channels[id] = ch

	security := b.securityOf(c)
	b.operations[id+"Receive"] = operation("receive", id, "What the endpoint receives from each client.", security, inName)
	b.operations[id+"Send"] = operation("send", id, "What the endpoint sends to each client.", security, sends...)
	return nil
}

// message adds a message of the given schema to the components, once
// for each name, and returns its name: the schema's own definition name,
// or fallback.
func (b *builder) message(fallback, summary string, schema []byte) (string, error) {
	p, err := liftSchema(schema)
	if err != nil {
		return "", err
	}
	for name, d := range p.defs {
		if err := b.schema(name, d); err != nil {
			return "", err
		}
	}
	name := p.name
	if name == "" {
		name = fallback
		if err := b.schema(name, p.root); err != nil {
			return "", err
		}
	}
	if _, ok := b.messages[name]; ok {
		return name, nil // its payload is the one schema of that name
	}
	msg := map[string]any{"name": name, "contentType": "application/json", "payload": ref(componentsPrefix + name)}
	if summary != "" {
		msg["summary"] = summary
	}
	b.messages[name] = msg
	return name, nil
}

// recorded adds the message of a recorded Out: the schema of the
// message named out, with the position the room writes in front, and
// returns its name.
func (b *builder) recorded(out string) (string, error) {
	var s map[string]any
	raw, _ := json.Marshal(b.schemas[out]) // a deep copy: the two schemas part ways
	if err := json.Unmarshal(raw, &s); err != nil || s["type"] != "object" {
		return "", fmt.Errorf("asyncapi: History: the schema of %s is no object, and a recorded message must be one", out)
	}
	props, _ := s["properties"].(map[string]any)
	if props == nil {
		props = map[string]any{}
		s["properties"] = props
	}
	props["seq"] = map[string]any{"type": "integer", "minimum": 1,
		"description": "The message's offset in the room's history, counted from 1 (wsroom.QuerySince resumes after it)."}
	props["epoch"] = map[string]any{"type": "string", "pattern": epochPattern,
		"description": "The room's history the offset belongs to (wsroom.QueryEpoch); another epoch means that history was lost."}
	req, _ := s["required"].([]any)
	s["required"] = append([]any{"seq", "epoch"}, slices.DeleteFunc(req, func(r any) bool { return r == "seq" || r == "epoch" })...)
	name := out + "Recorded"
	if err := b.schema(name, s); err != nil {
		return "", err
	}
	if _, ok := b.messages[name]; !ok {
		b.messages[name] = map[string]any{"name": name, "contentType": "application/json", "payload": ref(componentsPrefix + name),
			"summary": "A recorded message (wsroom.WithHistory): " + out + " with its position, seq and epoch, as its first fields. Messages published as ephemeral are " + out + " alone."}
	}
	return name, nil
}

// schema adds a schema to the components; one name holds one schema.
func (b *builder) schema(name string, s any) error {
	if old, ok := b.schemas[name]; ok && !reflect.DeepEqual(old, s) {
		return fmt.Errorf("asyncapi: two different schemas named %q: rename one of the types", name)
	}
	b.schemas[name] = s
	return nil
}

// securityOf returns the security requirements of a channel's operations,
// adding the schemes they refer to.
func (b *builder) securityOf(c Channel) []any {
	if !c.token {
		return nil
	}
	b.security["bearerToken"] = map[string]any{
		"type": "http", "scheme": "bearer",
		"description": "The token in the upgrade request's Authorization header (wsroom.RequireToken).",
	}
	b.security["queryToken"] = map[string]any{
		"type": "httpApiKey", "name": "token", "in": "query",
		"description": "The token in the upgrade request's token query parameter, for browsers (wsroom.RequireToken); removed from the URL the handler sees.",
	}
	return []any{ref("#/components/securitySchemes/bearerToken"), ref("#/components/securitySchemes/queryToken")}
}

// parameters describes the path parameters of a channel.
func parameters(c Channel, names []string) (map[string]any, error) {
	for name := range c.params {
		if !slices.Contains(names, name) {
			return nil, fmt.Errorf("asyncapi: Param %q: pattern %q has no such wildcard", name, c.pattern)
		}
	}
	ps := map[string]any{}
	for _, name := range names {
		d := c.params[name]
		if d == "" {
			d = fmt.Sprintf("The path value %s of the upgrade request (r.PathValue(%q)).", name, name)
		}
		ps[name] = map[string]any{"description": d}
	}
	return ps, nil
}

// queryParams are the query parameters the channel documents: the
// recovery protocol's with History, then those given by Query.
func (c *Channel) queryParams() []queryParam {
	if !c.history {
		return c.query
	}
	return append([]queryParam{
		{name: "since", pattern: "^[0-9]+$", description: "To resume: the seq of the last recorded message received (wsroom.QuerySince). The server then first sends the recovery notice and, if recovered, the missed messages. Given without epoch, or not a non-negative integer: 400, no upgrade."},
		{name: "epoch", description: "To resume: the epoch of that message (wsroom.QueryEpoch), required with since."},
	}, c.query...)
}

// wsBinding is the channel's WebSocket binding: the upgrade is a GET, with
// the query parameters given.
func wsBinding(query []queryParam) map[string]any {
	b := map[string]any{"method": "GET", "bindingVersion": "0.1.0"}
	if len(query) > 0 {
		props := map[string]any{}
		for _, q := range query {
			p := map[string]any{"type": "string", "description": q.description}
			if q.pattern != "" {
				p["pattern"] = q.pattern
			}
			props[q.name] = p
		}
		b["query"] = map[string]any{"type": "object", "properties": props}
	}
	return b
}

// operation is one operation of a channel.
func operation(action, channel, summary string, security []any, messages ...string) map[string]any {
	refs := make([]any, len(messages))
	for i, m := range messages {
		refs[i] = ref("#/channels/" + channel + "/messages/" + m)
	}
	op := map[string]any{
		"action": action, "summary": summary,
		"channel": ref("#/channels/" + channel), "messages": refs,
	}
	if security != nil {
		op["security"] = security
	}
	return op
}

func ref(to string) map[string]any { return map[string]any{"$ref": to} }
