package redis

import (
	"bytes"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// proxyMode is how a test proxy mistreats traffic.
type proxyMode int

const (
	// proxyDelay forwards both ways, delaying each reply chunk.
	proxyDelay proxyMode = iota
	// proxyBlackHole accepts connections, reads everything, answers nothing.
	proxyBlackHole
	// proxyResetOnReply forwards requests to the server, then resets the
	// client's connection the moment the server's reply arrives, so the
	// command runs but the client never learns its outcome.
	proxyResetOnReply
)

// proxy is a loopback TCP proxy in front of a redis-server for fault tests.
type proxy struct {
	Addr   string
	l      net.Listener
	target string
	mode   proxyMode
	delay  time.Duration
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

// newProxy starts a proxy to target; it is closed in t.Cleanup.
func newProxy(t testing.TB, target string, mode proxyMode, delay time.Duration) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{Addr: l.Addr().String(), l: l, target: target, mode: mode, delay: delay}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

func (p *proxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.track(c)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c)
		}()
	}
}

func (p *proxy) serve(c net.Conn) {
	defer c.Close()
	if p.mode == proxyBlackHole {
		io.Copy(io.Discard, c)
		return
	}
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	p.track(s)
	defer s.Close()
	// scriptSent is set once the client has sent a script call, so that
	// the connection handshake (HELLO, CLIENT SETINFO) passes untouched.
	var scriptSent atomic.Bool
	go func() {
		defer s.Close()
		b := make([]byte, 32<<10)
		for {
			n, err := c.Read(b)
			if n > 0 {
				if bytes.Contains(bytes.ToLower(b[:n]), []byte("evalsha")) {
					scriptSent.Store(true)
				}
				if _, werr := s.Write(b[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			switch p.mode {
			case proxyResetOnReply:
				if !scriptSent.Load() {
					break
				}
				if tc, ok := c.(*net.TCPConn); ok {
					tc.SetLinger(0) // RST, not FIN
				}
				return
			case proxyDelay:
				time.Sleep(p.delay)
			}
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Close stops accepting, closes every connection and waits for the
// proxy's goroutines.
func (p *proxy) Close() {
	p.l.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}
