package wsroom

// membership is a room subscription a connection drops when its handler
// ends, if the handler did not drop it first.
type membership struct {
	leave func()
}

// join remembers m. It reports false, remembering nothing, once the handler
// has ended: the caller must then leave at once.
func (c *conn) join(m *membership) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return false
	}
	c.leaves = append(c.leaves, m)
	return true
}

// forget drops m from the memberships to leave.
func (c *conn) forget(m *membership) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.leaves {
		if x == m {
			c.leaves = append(c.leaves[:i], c.leaves[i+1:]...)
			return
		}
	}
}

// leaveRooms drops the memberships the handler did not drop itself.
func (c *conn) leaveRooms() {
	c.mu.Lock()
	leaves := c.leaves
	c.leaves = nil
	c.ended = true
	c.mu.Unlock()
	for _, m := range leaves {
		m.leave()
	}
}
