package server

import (
	"net"
	"sync"
)

// perIPListener caps concurrent connections per client address. It is ours
// rather than fasthttp's MaxConnsPerIP because fasthttp's wrapper hides the
// TCP socket that watchClient peeks at to see a client leave.
type perIPListener struct {
	net.Listener
	max   int
	mu    sync.Mutex
	count map[string]int
}

func limitPerIP(ln net.Listener, max int) net.Listener {
	return &perIPListener{Listener: ln, max: max, count: map[string]int{}}
}

func (l *perIPListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc, ok := c.(*net.TCPConn)
		if !ok {
			return c, nil
		}
		ip := tc.RemoteAddr().(*net.TCPAddr).IP.String()
		l.mu.Lock()
		if l.count[ip] >= l.max {
			l.mu.Unlock()
			c.Close() // over the cap: refuse before reading anything
			continue
		}
		l.count[ip]++
		l.mu.Unlock()
		return &ipConn{TCPConn: tc, l: l, ip: ip}, nil
	}
}

type ipConn struct {
	*net.TCPConn
	l    *perIPListener
	ip   string
	once sync.Once
}

func (c *ipConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		if c.l.count[c.ip]--; c.l.count[c.ip] <= 0 {
			delete(c.l.count, c.ip)
		}
		c.l.mu.Unlock()
	})
	return c.TCPConn.Close()
}
