//go:build unix

package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestChromiumNegotiatesCompression: Chromium, which offers
// permessage-deflate on every socket, gets it from the chat binary
// (WithCompression), and a message long enough to be compressed goes to
// the room and comes back intact (browsertest/compression.mjs).
func TestChromiumNegotiatesCompression(t *testing.T) {
	pageScript(t) // skips, or fails under WSROOM_CI, without node, Chromium or playwright-core
	p := startBinary(t, chatBinary(t))
	ctx, cancel := context.WithTimeout(context.Background(), pageBudget)
	defer cancel()
	out, err := exec.CommandContext(ctx, "node", filepath.Join("browsertest", "compression.mjs"), p.base).CombinedOutput()
	if err != nil {
		t.Fatalf("browsertest compression: %v\n%s", err, out)
	}
	t.Logf("browsertest compression:\n%s", out)
}
