package freeport_test

import (
	"net"
	"testing"

	"github.com/docaxis/docaxis/internal/freeport"
)

func TestPortIsFreeAndNotPickedTwice(t *testing.T) {
	seen := map[int]bool{}
	for range 50 {
		p, err := freeport.Port()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("port %d picked twice", p)
		}
		seen[p] = true
		if p >= 32768 {
			t.Fatalf("port %d lies in the kernel's ephemeral range", p)
		}
	}
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on the picked %s: %v", addr, err)
	}
	l.Close()
}
