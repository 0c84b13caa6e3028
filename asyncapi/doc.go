// Package asyncapi describes wsroom endpoints as an AsyncAPI 3.0 document:
// the contract of their messages, for the teams and tools on the other end
// of the socket.
//
// Each endpoint becomes a channel whose address is the path of its
// net/http mux pattern, with a parameter for each wildcard. The document
// describes the server: its receive operation carries In's schema, its
// send operation Out's and the library's own frames (the error reply of
// wsroom.InvalidReply; with History, recorded messages with their
// position and the recovery notice, and the since and epoch query
// parameters of a client that resumes), and both carry the security of
// the endpoint's guard when TokenAuth says it is wsroom.RequireToken. Schemas come from
// the endpoint itself (Endpoint.Schemas): the document cannot drift from
// the types the endpoint validates against.
//
//	doc, err := asyncapi.New(asyncapi.Info{Title: "Chat", Version: "1.0.0"},
//		asyncapi.Endpoint("GET /chat/room/{roomId}", chat, asyncapi.TokenAuth()),
//	)
//	mux.Handle("GET /asyncapi.json", doc)
package asyncapi
