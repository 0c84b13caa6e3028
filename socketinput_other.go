//go:build !linux

package wsroom

import "net"

// init leaves in reading through net.Conn off Linux, with a buffer of its
// own under gws (see upgrade).
func (in *socketInput) init(net.Conn) {}
