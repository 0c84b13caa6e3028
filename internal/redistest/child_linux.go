package redistest

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill a redis-server the tests started if
// the test binary dies without its cleanups (a panic, a timeout).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
