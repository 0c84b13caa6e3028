package wsroom

import (
	"bytes"
	"io"
	"net"
	"testing"
)

// TestWritevFlushAllocatesNothing flushes frames to a real loopback socket
// through the direct writer, the fan-out's hot path, and requires that a
// flush allocates nothing and that the peer receives every byte in order.
func TestWritevFlushAllocatesNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	d := directWriterFor(server)
	if d == nil {
		t.Fatal("no direct writer for a TCP connection")
	}

	frames := [][]byte{[]byte("\x81\x05hello"), []byte("\x81\x03abc"), []byte("\x81\x01!")}
	var want []byte
	for _, f := range frames {
		want = append(want, f...)
	}
	const runs = 200
	received := make(chan []byte, 1)
	go func() {
		got := make([]byte, len(want)*(runs+1))
		n, _ := io.ReadFull(client, got)
		received <- got[:n]
	}()

	w := workerPool.Get().(*worker)
	defer workerPool.Put(w)
	var bad error
	var l frameList // the batch: a worker's, in a server
	flush := func() {
		for _, f := range frames {
			l.push(f)
		}
		n, b, err := d.writev(w, &l)
		if err != nil || n != len(frames) || b != len(want) || !l.empty() {
			bad = err
			t.Errorf("writev wrote %d frames, %d bytes, err %v; want %d, %d", n, b, err, len(frames), len(want))
		}
	}
	// AllocsPerRun runs flush once to warm up, then runs times.
	if allocs := testing.AllocsPerRun(runs, flush); allocs != 0 {
		t.Errorf("a flush allocates %v objects, want 0", allocs)
	}
	if bad != nil {
		t.Fatal(bad)
	}
	got := <-received
	if !bytes.Equal(got, bytes.Repeat(want, runs+1)) {
		t.Fatalf("the peer received %d bytes, not the %d written in order", len(got), len(want)*(runs+1))
	}
}
