package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// conn is one keep-alive HTTP/1.1 connection that writes a prepared request
// and reads the status and Content-Length body of the answer. It does only
// what a GET against examples/basic needs, so the generator spends its CPU
// on sending, not on net/http's client machinery: on a 2-core machine the
// generator and the server share the cores.
type conn struct {
	nc     net.Conn
	br     *bufio.Reader
	closed bool // the server said Connection: close
}

// dial connects to addr, from local when it is valid (a source address in
// 127.0.0.0/8, which Linux routes to lo without configuration).
func dial(addr string, local netip.Addr, timeout time.Duration) (*conn, error) {
	d := net.Dialer{Timeout: timeout}
	if local.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: local.AsSlice()}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
		// Close with RST: a rotating client opens thousands of connections
		// a second, and TIME_WAIT would keep each one for a minute.
		tc.SetLinger(0)
	}
	return &conn{nc: nc, br: bufio.NewReaderSize(nc, 4096)}, nil
}

func (c *conn) close() { c.nc.Close() }

var errNoLength = errors.New("response without Content-Length")

// do writes req and reads one response; it returns the status code.
func (c *conn) do(req []byte, deadline time.Time) (int, error) {
	c.nc.SetDeadline(deadline)
	if _, err := c.nc.Write(req); err != nil {
		return 0, err
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	length := -1
	for {
		line, err = c.br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 { // "\r\n": end of headers
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return 0, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Connection")) && bytes.EqualFold(value, []byte("close")):
			c.closed = true
		}
	}
	if length < 0 {
		return 0, errNoLength
	}
	if _, err := c.br.Discard(length); err != nil {
		return 0, err
	}
	return status, nil
}

// request builds a GET for path on host, with X-Forwarded-For set when xff
// is valid.
func request(buf []byte, host, path string, xff netip.Addr) []byte {
	buf = append(buf[:0], "GET "...)
	buf = append(buf, path...)
	buf = append(buf, " HTTP/1.1\r\nHost: "...)
	buf = append(buf, host...)
	buf = append(buf, "\r\nUser-Agent: ratekit-loadgen\r\n"...)
	if xff.IsValid() {
		buf = append(buf, "X-Forwarded-For: "...)
		buf = xff.AppendTo(buf)
		buf = append(buf, "\r\n"...)
	}
	return append(buf, "\r\n"...)
}

// clientAddr maps client number n (0 ≤ n < 1<<24) into base's /8:
// base 10.0.0.0 gives 10.0.0.1, 10.0.0.2, …; base 127.0.0.0 skips
// 127.0.0.0/16 so that no client is 127.0.0.1, where servers listen.
func clientAddr(base netip.Addr, n int) netip.Addr {
	b := base.As4()
	if b[0] == 127 {
		n += 1 << 16
	}
	n++ // never x.0.0.0
	return netip.AddrFrom4([4]byte{b[0], byte(n >> 16), byte(n >> 8), byte(n)})
}
