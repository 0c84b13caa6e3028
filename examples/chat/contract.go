package main

import (
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/asyncapi"
)

// roomPattern is where the chat's endpoint is mounted, and so the channel
// its AsyncAPI document describes.
const roomPattern = "GET /chat/room/{roomId}"

// contract is the chat's AsyncAPI document, served at /asyncapi.json: the
// schemas come from the endpoint itself, the security from whether the
// chat was started with -token.
func contract(ep asyncapi.Describer, token bool) (*asyncapi.Document, error) {
	opts := []asyncapi.Option{
		asyncapi.ID("chatRoom"),
		asyncapi.Description("A chat room: every member receives every message of the room, its own included, and the joins and leaves of others. When the chat keeps a history (without a broker, or with -redis or -postgres), messages, joins and leaves are recorded: each carries seq and epoch, and a member that reconnects with the last it saw recovers what it missed. Typing signals are never recorded."),
		asyncapi.Param("roomId", "The room to join; a room exists while it has members, and its history for 5 minutes after."),
		asyncapi.Query("username", `The name shown to the room; "Anonymous" when absent or empty.`),
		asyncapi.Query(wsroom.QuerySince, "Reconnecting: the seq of the last recorded event seen. The connection first receives a recovery notice, then, if recovered, the events after it. Not a non-negative integer, or without epoch: 400."),
		asyncapi.Query(wsroom.QueryEpoch, "Reconnecting: the epoch of the last recorded event seen."),
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
