package server

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// watchPeeks counts the looks watchClient takes at sockets; tests read it to
// show that a request costs one look, not one per timer tick.
var watchPeeks atomic.Int64

// tcpCloseWait is Linux's TCP_CLOSE_WAIT state: the peer has closed its side.
const tcpCloseWait = 8

// aLongTimeAgo is a read deadline in the past: setting it wakes a goroutine
// blocked in the runtime's poller at once.
var aLongTimeAgo = time.Unix(1, 0)

// watchClient cancels cancel when the client closes its connection while the
// request waits for the engine, so its queued pairs are dropped. It waits in
// the runtime's network poller (epoll) for the socket to become readable and
// then peeks without consuming anything: no timer, no polling. stop ends the
// watch at once by waking the poller with a read deadline in the past, then
// clears the deadline (fasthttp sets its own before it reads the next
// request on the connection).
func watchClient(conn net.Conn, cancel func()) (stop func()) {
	type netConner interface{ NetConn() net.Conn }
	if nc, ok := conn.(netConner); ok { // TLS
		conn = nc.NetConn()
	}
	type deadliner interface {
		syscall.Conn
		SetReadDeadline(time.Time) error
	}
	dc, ok := conn.(deadliner)
	if !ok {
		return func() {}
	}
	raw, err := dc.SyscallConn()
	if err != nil {
		return func() {}
	}
	// The request's read deadline has done its job once the body is in; the
	// watch may last longer than it.
	if dc.SetReadDeadline(time.Time{}) != nil {
		return func() {}
	}
	var stopped atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1)
		for !stopped.Load() {
			gone := false
			err := raw.Read(func(fd uintptr) bool {
				if stopped.Load() {
					return true
				}
				watchPeeks.Add(1)
				n, _, err := syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
				switch {
				case n == 0 && err == nil: // orderly close
					gone = true
					return true
				case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
					return false // wait for the poller
				case err != nil: // reset
					gone = true
					return true
				default:
					// Bytes are waiting: a pipelined request, left to
					// fasthttp, or a TLS close_notify alert before the FIN.
					// A peer that has sent its FIN leaves the socket in
					// CLOSE_WAIT whatever sits unread before it.
					if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil && info.State == tcpCloseWait {
						gone = true
						return true
					}
					return false // wait for the next event (edge-triggered: no spin)
				}
			})
			if gone {
				cancel()
				return
			}
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				return // the connection is closed under us
			}
			// A deadline: ours from stop (the loop ends), or one set by
			// someone else, which is cleared so the watch goes on.
			if !stopped.Load() {
				dc.SetReadDeadline(time.Time{})
			}
		}
	}()
	return func() {
		stopped.Store(true)
		dc.SetReadDeadline(aLongTimeAgo)
		<-done
		dc.SetReadDeadline(time.Time{})
	}
}
