package wsroom

import "sync"

// frameList is a connection's queue of frames: a list of fixed-size chunks
// taken from a shared pool and given back once written, so queueing
// allocates nothing in the steady state and an idle connection holds no
// queue memory at all.
type frameList struct {
	head, tail *chunk
	skip       int // bytes of the first frame already written
}

// chunkFrames is the number of frames a chunk holds.
const chunkFrames = 32

type chunk struct {
	frames [chunkFrames][]byte
	n      int
	next   *chunk
}

var chunks = sync.Pool{New: func() any { return new(chunk) }}

func (l *frameList) empty() bool { return l.head == nil }

// push appends a frame.
func (l *frameList) push(f []byte) {
	if l.tail == nil || l.tail.n == chunkFrames {
		c := chunks.Get().(*chunk)
		if l.tail == nil {
			l.head = c
		} else {
			l.tail.next = c
		}
		l.tail = c
	}
	l.tail.frames[l.tail.n] = f
	l.tail.n++
}

// take returns the whole list and leaves l empty.
func (l *frameList) take() frameList {
	t := *l
	*l = frameList{}
	return t
}

// all yields the frames not yet written, the first one cut by skip.
func (l *frameList) all(yield func([]byte) bool) {
	skip := l.skip
	for c := l.head; c != nil; c = c.next {
		for _, f := range c.frames[:c.n] {
			if !yield(f[skip:]) {
				return
			}
			skip = 0
		}
	}
}

// consume drops the first n bytes: it gives back the chunks written in full
// and reports how many frames were completed.
func (l *frameList) consume(n int) (frames int) {
	for n > 0 && l.head != nil {
		c := l.head
		i := 0
		for ; i < c.n; i++ {
			rest := len(c.frames[i]) - l.skip
			if n < rest {
				l.skip += n
				n = 0
				break
			}
			n -= rest
			l.skip = 0
			frames++
		}
		if i < c.n {
			// The chunk is not done: shift its remaining frames down.
			copy(c.frames[:], c.frames[i:c.n])
			clear(c.frames[c.n-i : c.n])
			c.n -= i
			break
		}
		l.head = c.next
		release(c)
	}
	if l.head == nil {
		l.tail = nil
	}
	return frames
}

// count returns the frames and bytes not yet written.
func (l *frameList) count() (frames, bytes int) {
	for f := range l.all {
		frames++
		bytes += len(f)
	}
	return frames, bytes
}

// drop gives every chunk back unwritten.
func (l *frameList) drop() {
	for c := l.head; c != nil; {
		next := c.next
		release(c)
		c = next
	}
	*l = frameList{}
}

func release(c *chunk) {
	clear(c.frames[:c.n])
	c.n, c.next = 0, nil
	chunks.Put(c)
}
