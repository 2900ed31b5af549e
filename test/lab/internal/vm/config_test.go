package vm

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	return Config{
		QEMU: "qemu-system-x86_64", Kernel: "/k/vmlinux", Initrd: "/k/initrd",
		MemoryMiB: 1024, CPUs: 1, Timeout: 90*time.Second + 500*time.Millisecond,
	}
}

func TestCommand(t *testing.T) {
	tests := []struct {
		name     string
		change   func(*Config)
		want     []string // consecutive arguments that must appear
		wantNone string   // an argument that must not appear
	}{
		{name: "bounded by timeout(1), rounded up", want: []string{"timeout", "--kill-after=10", "91", "qemu-system-x86_64"}},
		{name: "tcg without network", want: []string{"-accel", "tcg"}, wantNone: "-virtfs"},
		{name: "no network device", want: []string{"-nic", "none"}},
		{name: "kernel and initrd", want: []string{"-kernel", "/k/vmlinux", "-initrd", "/k/initrd"}},
		{name: "serial console", want: []string{"-append", "console=ttyS0 panic=-1 quiet"}},
		{name: "extra command line", change: func(c *Config) { c.Append = "lab.debug=1" }, want: []string{"-append", "console=ttyS0 panic=-1 quiet lab.debug=1"}},
		{name: "size", change: func(c *Config) { c.MemoryMiB, c.CPUs = 3072, 2 }, want: []string{"-m", "3072", "-smp", "2"}},
		{
			name: "read-only 9p share", change: func(c *Config) { c.Share = "/srv/big" },
			want: []string{"-virtfs", "local,path=/srv/big,mount_tag=labshare,security_model=none,readonly=on"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			if tt.change != nil {
				tt.change(&cfg)
			}
			got := cfg.Command()
			if !containsRun(got, tt.want) {
				t.Errorf("Command() = %q\nwant it to contain %q", got, tt.want)
			}
			if tt.wantNone != "" && slices.Contains(got, tt.wantNone) {
				t.Errorf("Command() = %q contains %q", got, tt.wantNone)
			}
			if !slices.Contains(got, "-no-reboot") {
				t.Errorf("Command() = %q lacks -no-reboot", got)
			}
		})
	}
}

func containsRun(haystack, run []string) bool {
	for i := range haystack {
		if i+len(run) <= len(haystack) && slices.Equal(haystack[i:i+len(run)], run) {
			return true
		}
	}
	return false
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*Config)
		wantMsg string
	}{
		{name: "valid", change: func(*Config) {}},
		{name: "no kernel", change: func(c *Config) { c.Kernel = "" }, wantMsg: "kernel and initrd"},
		{name: "tiny memory", change: func(c *Config) { c.MemoryMiB = 128 }, wantMsg: "128 MiB"},
		{name: "no cpu", change: func(c *Config) { c.CPUs = 0 }, wantMsg: "cpus 0"},
		{name: "unbounded", change: func(c *Config) { c.Timeout = 0 }, wantMsg: "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.change(&cfg)
			err := cfg.Validate()
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Validate() = %v, want ErrInvalidConfig mentioning %q", err, tt.wantMsg)
			}
		})
	}
}
