package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/wsroom/wsroom"
)

// presencePattern is where a room's presence is served.
const presencePattern = "GET /chat/room/{roomId}/presence"

// presenceTimeout bounds a read of the broker's presence: past it, a
// joiner or a GET is given this instance's members.
const presenceTimeout = time.Second

// presenceBody is the answer of GET /chat/room/{roomId}/presence. Partial,
// set only while the broker cannot be read, says that Users are this
// instance's members alone.
type presenceBody struct {
	Users   []PresentUser `json:"users"`
	Partial bool          `json:"partial,omitempty"`
}

// presentUsers returns who is in room on every instance, sorted by
// username in byte order, never nil. When the broker cannot be read
// within presenceTimeout it returns this instance's members and an error
// wrapping wsroom.ErrBroker.
func presentUsers(ctx context.Context, room *wsroom.Room[ChatMessage]) ([]PresentUser, error) {
	ctx, cancel := context.WithTimeout(ctx, presenceTimeout)
	defer cancel()
	who, err := room.Presence(ctx)
	users := make([]PresentUser, 0, who.Len())
	for e := range who.All() {
		users = append(users, PresentUser{Username: e.Key, Connections: e.Connections})
	}
	return users, err
}

// presenceHandler answers GET /chat/room/{roomId}/presence with
// 200 {"users":[{"username":NAME,"connections":N},...]}, the shape of the
// joiner's presence frame ("users":[] for a room nobody is in), and
// "partial":true beside this instance's members while the broker cannot be
// read. With a guard (-token) it asks for the token as the upgrade does,
// and answers 401 (or 403) as the upgrade does.
func presenceHandler(rooms *wsroom.Rooms[ChatMessage], guard wsroom.Guard) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if guard != nil {
			var err error
			if r, err = guard(r); err != nil {
				refuse(w, err)
				return
			}
		}
		users, err := presentUsers(r.Context(), rooms.Room(r.PathValue("roomId")))
		body := presenceBody{Users: users, Partial: err != nil}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(body)
	})
}

// refuse answers a request the guard refused, as the endpoint answers a
// refused upgrade.
func refuse(w http.ResponseWriter, err error) {
	if errors.Is(err, wsroom.ErrForbidden) {
		http.Error(w, http.StatusText(http.StatusForbidden), http.StatusForbidden)
		return
	}
	w.Header().Set("WWW-Authenticate", "Bearer")
	http.Error(w, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
}
