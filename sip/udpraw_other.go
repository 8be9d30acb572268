//go:build !linux

package sip

import "net"

// rawPacketConn returns c: raw reads and writes are Linux only.
func rawPacketConn(c net.PacketConn) net.PacketConn { return c }
