package main

import (
	"os"
	"testing"

	"github.com/wsroom/wsroom/internal/pgtest"
)

// pgShared returns the URL of the server the tests share: CI's, whose URL
// .ci/run exports in WSROOM_PG_URL, or else a cluster of the test's own
// (see pgtest.Own).
func pgShared(t *testing.T) string {
	t.Helper()
	if url := os.Getenv("WSROOM_PG_URL"); url != "" {
		return url
	}
	return pgtest.Own(t).URL
}
