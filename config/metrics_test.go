package config_test

import (
	"strings"
	"testing"

	"github.com/nudgebot/nudgebot/config"
)

// Ensure metrics.addr accepts what the listener can bind to a known port
// and explains everything else, with the line it came from.
func TestParse_MetricsAddr(t *testing.T) {
	tests := []struct {
		name string
		addr string
		want string // "" means accepted
	}{
		{name: "Off", addr: ``},
		{name: "Loopback", addr: `127.0.0.1:9090`},
		{name: "AllInterfaces", addr: `:9090`},
		{name: "HostName", addr: `localhost:9090`},
		{name: "IPv6", addr: `"[::1]:9090"`},
		{name: "ErrNoPort", addr: `127.0.0.1`, want: `f.yaml:2: metrics.addr: "127.0.0.1" is not a host:port address: write it like 127.0.0.1:9090`},
		{name: "ErrURL", addr: `http://127.0.0.1:9090`, want: `is not a host:port address`},
		{name: "ErrPortZero", addr: `127.0.0.1:0`, want: `f.yaml:2: metrics.addr: "127.0.0.1:0" has no usable port: give a port from 1 to 65535`},
		{name: "ErrPortName", addr: `127.0.0.1:http`, want: `has no usable port`},
		{name: "ErrPortRange", addr: `127.0.0.1:70000`, want: `has no usable port`},
		{name: "ErrHostSpace", addr: `"my host:9090"`, want: `has no usable host`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := "metrics:\n  addr: " + tt.addr + "\n"
			c, err := config.Parse("f.yaml", []byte(yaml), env(nil))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Parse(%q): %v", yaml, err)
				}
				if got, want := c.Metrics.Addr, strings.Trim(tt.addr, `"`); got != want {
					t.Errorf("Metrics.Addr=%q, want %q", got, want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse(%q)=nil, want an error containing %q", yaml, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q)=\n  %v\nwant it to contain\n  %s", yaml, err, tt.want)
			}
		})
	}
}

// Ensure the listener is off unless asked for.
func TestDefault_MetricsOff(t *testing.T) {
	if addr := config.Default().Metrics.Addr; addr != "" {
		t.Errorf("Default().Metrics.Addr=%q, want off (empty)", addr)
	}
}
