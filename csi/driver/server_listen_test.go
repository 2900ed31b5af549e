package driver_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvmeof/nvmeof/csi/driver"
)

// staleSocket makes a unix socket file with nothing accepting on it,
// which a SIGKILLed plugin leaves behind.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "unix", path)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// accepts checks that l is the listener on path: a dial reaches it.
func accepts(t *testing.T, l net.Listener, path string) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			err = c.Close()
		}
		done <- err
	}()
	c, err := (&net.Dialer{}).DialContext(t.Context(), "unix", path)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	_ = c.Close()
	if err := <-done; err != nil {
		t.Fatalf("accept: %v", err)
	}
}

func TestListen(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		wantErr string // "" for success
	}{
		{"no file", func(*testing.T, string) {}, ""},
		{"stale socket is replaced", staleSocket, ""},
		{"regular file is refused", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "is not a socket"},
		{"live socket is refused", func(t *testing.T, path string) {
			l, err := (&net.ListenConfig{}).Listen(context.Background(), "unix", path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = l.Close() })
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					_ = c.Close()
				}
			}()
		}, "in use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "csi.sock")
			tt.prepare(t, path)
			before, _ := os.Lstat(path)
			l, err := driver.Listen("unix://" + path)
			if tt.wantErr != "" {
				if err == nil {
					_ = l.Close()
					t.Fatalf("Listen succeeded, want an error with %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q, want %q", err, tt.wantErr)
				}
				after, statErr := os.Lstat(path)
				if statErr != nil || !os.SameFile(before, after) {
					t.Errorf("the refused endpoint was touched: %v", statErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Listen: %v", err)
			}
			t.Cleanup(func() { _ = l.Close() })
			accepts(t, l, path)
		})
	}
}

func TestListenEndpointForms(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		endpoint string
		wantErr  string
	}{
		{"unix://" + filepath.Join(dir, "a.sock"), ""},
		{"unix:" + filepath.Join(dir, "b.sock"), ""},
		{filepath.Join(dir, "c.sock"), ""},
		{"tcp://127.0.0.1:10000", "only unix sockets"},
		{"unix://relative.sock", "absolute socket path"},
		{"", "absolute socket path"},
	}
	for _, tt := range tests {
		t.Run(tt.endpoint, func(t *testing.T) {
			l, err := driver.Listen(tt.endpoint)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Listen(%q): %v", tt.endpoint, err)
				}
				_ = l.Close()
				return
			}
			if err == nil {
				_ = l.Close()
				t.Fatalf("Listen(%q) succeeded, want %q", tt.endpoint, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Listen(%q) = %v, want %q", tt.endpoint, err, tt.wantErr)
			}
		})
	}
}
