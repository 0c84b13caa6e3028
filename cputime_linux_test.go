//go:build linux

package wsroom_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat: Linux reports
// them in clock ticks of 1/100 s whatever the kernel's own tick rate.
const userHZ = 100

// pidCPU returns the CPU time (user and system, every thread) process pid
// has used so far, from /proc/<pid>/stat, to 10 ms.
func pidCPU(pid int) (time.Duration, error) {
	path := "/proc/" + strconv.Itoa(pid) + "/stat"
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces:
	// the fields are counted from the last ')'. utime and stime are
	// fields 14 and 15, so 11 and 12 after it (the state, field 3, is 0).
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("%s: %q", path, data)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%s: utime %q, stime %q", path, f[11], f[12])
	}
	return time.Duration(utime+stime) * time.Second / userHZ, nil
}
