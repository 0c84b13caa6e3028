package main

import "github.com/wsroom/wsroom/asyncapi"

// roomPattern is where the chat's endpoint is mounted, and so the channel
// its AsyncAPI document describes.
const roomPattern = "GET /chat/room/{roomId}"

// contract is the chat's AsyncAPI document, served at /asyncapi.json: the
// schemas come from the endpoint itself, the security from whether the
// chat was started with -token.
func contract(ep asyncapi.Describer, token bool) (*asyncapi.Document, error) {
	opts := []asyncapi.Option{
		asyncapi.ID("chatRoom"),
		asyncapi.Description("A chat room: every member receives every message of the room, its own included, and the joins and leaves of others. Messages, joins and leaves are recorded (in-process, or in the broker's history with -nats, -redis or -postgres): each carries seq and epoch, and a member that reconnects with the last it saw recovers what it missed. Typing signals are never recorded. Right after its own joined (after what it missed, when it recovers), a member alone receives {\"type\":\"presence\",\"users\":[{\"username\":NAME,\"connections\":N},...]}: every user in the room on every instance, sorted by username in byte order, itself included; joined and left keep it current. A left carries no timestamp: it may be published by another instance, once the presence lease of a member whose instance died has run out. GET /chat/room/{roomId}/presence answers {\"users\":[...]} in the same shape."),
		asyncapi.Param("roomId", "The room to join; a room exists while it has members, and its history for 5 minutes after."),
		asyncapi.Query("username", `The name shown to the room; "Anonymous" when absent or empty.`),
		asyncapi.History(), // since and epoch, the recorded events, the recovery notice
	}
	if token {
		opts = append(opts, asyncapi.TokenAuth())
	}
	return asyncapi.New(asyncapi.Info{
		Title:       "wsroom chat",
		Version:     "1.0.0",
		Description: "The WebSocket contract of wsroom's reference chat (examples/chat).",
	}, asyncapi.Endpoint(roomPattern, ep, opts...))
}
