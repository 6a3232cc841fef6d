package source

import (
	"net"
	"syscall"
)

// socketReceiveBuffer reads SO_RCVBUF back, to report what the kernel
// granted (it doubles the request, capped by net.core.rmem_max).
func socketReceiveBuffer(c *net.UDPConn) int {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	_ = rc.Control(func(fd uintptr) {
		n, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	})
	return n
}
