//go:build lab

package nomade2e

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// prepareVM gives the initramfs root what Nomad needs and the lab image
// lacks: the C library the nomad binary links against, accounts for exec
// tasks, cgroup v2, and a tmpfs data dir (Nomad cannot fingerprint disk
// space on the initramfs root).
func prepareVM() error {
	for _, lib := range []struct{ from, to string }{
		{share + "/lib/libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"},
		{share + "/lib/ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2"},
	} {
		if err := copyIfMissing(lib.from, lib.to, 0o755); err != nil {
			return err
		}
	}
	files := map[string]string{
		"/etc/passwd":        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"/etc/group":         "root:x:0:\nnogroup:x:65534:\n",
		"/etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
		"/etc/hosts":         "127.0.0.1 localhost\n",
		nomadAgentCfg:        agentConfig,
	}
	for path, body := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("prepare %s: %w", path, err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil { //nolint:gosec // world-readable like any /etc file
			return fmt.Errorf("prepare %s: %w", path, err)
		}
	}
	for _, m := range []struct{ src, dir, fstype, data string }{
		{"tmpfs", nomadDataDir, "tmpfs", "mode=0711"},
		{"tmpfs", pluginState, "tmpfs", "mode=0700"},
		{"cgroup2", "/sys/fs/cgroup", "cgroup2", "nsdelegate"},
	} {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", m.dir, err)
		}
		if err := syscall.Mount(m.src, m.dir, m.fstype, 0, m.data); err != nil && !errors.Is(err, syscall.EBUSY) {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.dir, err)
		}
	}
	// Enable the controllers Nomad's exec driver puts tasks under; one at a
	// time, because a kernel without one refuses the whole write.
	var enabled int
	for _, c := range []string{"cpuset", "cpu", "io", "memory", "pids"} {
		if os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte("+"+c), 0o644) == nil { //nolint:gosec // a cgroupfs file
			enabled++
		}
	}
	if enabled == 0 {
		return errors.New("no cgroup controller could be enabled")
	}
	return nil
}

// agentConfig: a dev agent (server and client) on loopback. raw_exec hosts
// the plugin; exec runs the consumer, without pivot_root, which the
// initramfs root cannot do.
const agentConfig = `data_dir  = "` + nomadDataDir + `"
bind_addr = "127.0.0.1"
log_level = "DEBUG"

client {
  network_interface = "lo"
}

plugin "raw_exec" {
  config {
    enabled = true
  }
}

plugin "exec" {
  config {
    no_pivot_root = true
  }
}
`

func copyIfMissing(from, to string, mode os.FileMode) error {
	if _, err := os.Stat(to); err == nil {
		return nil
	}
	src, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("copy %s: %w", from, err)
	}
	defer func() { _ = src.Close() }()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return fmt.Errorf("copy to %s: %w", to, err)
	}
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("copy to %s: %w", to, err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		_ = dst.Close()
		return fmt.Errorf("copy to %s: %w", to, err)
	}
	if err := dst.Close(); err != nil {
		return fmt.Errorf("copy to %s: %w", to, err)
	}
	return nil
}
