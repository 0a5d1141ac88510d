// Package freeport picks loopback ports for servers that must be named
// before they bind: the nodes of a test cluster name each other's route
// ports, and a child process is told where to listen.
//
// A port the kernel hands out for "127.0.0.1:0" lies in its ephemeral
// range, which every outgoing connection on the host also draws from; with
// many test processes connecting at once, such a port is often taken again
// between the pick and the bind. The ports picked here lie below that
// range, so only another listener can take them, and one process never
// picks the same port twice.
package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// ErrNoPort is returned when no port of the range could be bound.
var ErrNoPort = errors.New("freeport: no free loopback port")

var (
	mu     sync.Mutex
	picked = map[int]bool{}
)

// Port returns a loopback TCP port nothing listens on now, below the
// kernel's ephemeral range.
func Port() (int, error) {
	lo, hi := portRange()
	mu.Lock()
	defer mu.Unlock()
	for range 200 {
		p := lo + rand.IntN(hi-lo)
		if picked[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l.Close()
		picked[p] = true
		return p, nil
	}
	return 0, fmt.Errorf("%w in %d-%d after 200 tries", ErrNoPort, lo, hi-1)
}

// Addr returns "127.0.0.1:<port>" for a port from Port.
func Addr() (string, error) {
	p, err := Port()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
}

// portRange is [lo, hi): the 12,000 ports below the ephemeral range
// (Linux's default starts at 32768; Windows and macOS start at 49152).
func portRange() (lo, hi int) {
	hi = 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 2048 && n < hi {
				hi = n
			}
		}
	}
	return max(1024, hi-12000), hi
}
