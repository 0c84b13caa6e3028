//go:build !race

package wsroom

// raceEnabled reports whether the race detector is on: it changes frame
// sizes and allocations, so memory figures mean nothing under it.
const raceEnabled = false
