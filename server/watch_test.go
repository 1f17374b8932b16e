package server_test

import (
	"net"
	"testing"
	"time"

	"github.com/aimind/aimind/server"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (srv, cli net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cli, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if srv, err = ln.Accept(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(); cli.Close() })
	return srv, cli
}

// TestWatchSeesCloseAfterUnreadBytes: a client that leaves bytes unread
// before it closes (a TLS close_notify alert, or a pipelined request) is
// still seen to go; one that only sends bytes is not.
func TestWatchSeesCloseAfterUnreadBytes(t *testing.T) {
	srv, cli := tcpPair(t)
	gone := make(chan struct{})
	stop := server.WatchClient(srv, func() { close(gone) })
	defer stop()
	cli.Write([]byte{0x15}) // an alert record's first byte
	select {
	case <-gone:
		t.Fatal("bytes alone were taken for a disconnect")
	case <-time.After(200 * time.Millisecond): // nothing may happen: a bounded look
	}
	cli.Close()
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the client closed after sending a byte and the watcher did not see it")
	}
}

// TestWatchStopsAtOnce: stopping a watch on an idle connection returns
// without waiting for anything and leaves the connection usable.
func TestWatchStopsAtOnce(t *testing.T) {
	srv, cli := tcpPair(t)
	stop := server.WatchClient(srv, func() { t.Error("cancelled without a disconnect") })
	before := server.WatchPeeks.Load()
	stop()
	if n := server.WatchPeeks.Load() - before; n > 1 {
		t.Fatalf("%d looks while stopping", n)
	}
	cli.Write([]byte("x"))
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 1)
	if _, err := srv.Read(b); err != nil || b[0] != 'x' {
		t.Fatalf("after the watch the connection reads %q, %v", b, err)
	}
}
