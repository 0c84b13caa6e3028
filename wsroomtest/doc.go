// Package wsroomtest tests wsroom endpoints over real sockets, as
// net/http/httptest tests HTTP handlers: NewServer serves a handler on a
// loopback port, Dial connects a typed client to it (gws's client side, a
// real WebSocket client), and the client's assertions wait with a
// deadline and say what arrived instead when they fail.
//
//	srv := wsroomtest.NewServer(t, ep)
//	c := wsroomtest.Dial[In, Out](t, srv, "/echo")
//	c.Send(In{Text: "hi"})
//	c.Expect(Out{Text: "hi"})
//	c.ExpectClosed(wsroom.StatusNormalClosure) // the handler returned nil
//
// Everything a test starts here ends at its cleanup: clients are closed
// and their readers waited for, endpoints are shut down, the server is
// closed. No assertion sleeps: each waits for the next frame or its
// deadline (WithTimeout; DefaultTimeout by default).
package wsroomtest
