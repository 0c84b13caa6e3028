//go:build !linux

package loadgen

import (
	"syscall"
	"time"
)

func sysProcAttr() *syscall.SysProcAttr { return nil }

// CPUTime returns 0: the benchmarks that use it run on Linux only.
func CPUTime() time.Duration { return 0 }
