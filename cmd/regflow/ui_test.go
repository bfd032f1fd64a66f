package main

import (
	"strings"
	"testing"
)

func TestCheckUIAddr(t *testing.T) {
	tests := []struct {
		addr     string
		explicit bool
		loopback bool
		err      string
	}{
		{"127.0.0.1:8080", false, true, ""},
		{"localhost:9000", true, true, ""},
		{"[::1]:8080", true, true, ""},
		{"0.0.0.0:8080", true, false, ""},
		{"10.1.2.3:8080", true, false, ""},
		{"10.1.2.3:8080", false, false, "without --addr"},
		{":8080", true, false, "no host"},
		{"127.0.0.1", true, false, "host:port"},
		{"127.0.0.1:", true, false, "no port"},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			loopback, err := checkUIAddr(tc.addr, tc.explicit)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("want an error with %q, got %v", tc.err, err)
				}
				return
			}
			if err != nil || loopback != tc.loopback {
				t.Fatalf("got %v, %v; want loopback %v", loopback, err, tc.loopback)
			}
		})
	}
}
