//go:build !linux

package source

import "net"

// socketReceiveBuffer is unknown off Linux.
func socketReceiveBuffer(*net.UDPConn) int { return 0 }
