//go:build !linux

package wsroom

import "net"

// init leaves in reading c through net.Conn off Linux, with a buffer of its
// own under gws (see upgrade), pending first.
func (in *socketInput) init(_ net.Conn, pending []byte) { in.pend(pending) }
