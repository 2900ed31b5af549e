//go:build lab

package nomade2e

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// share is the host directory `make nomad-e2e` prepares, mounted read-only
// over 9p by the lab's /init: the Nomad binary, the C library it links,
// examples/nomad and the Terraform outputs.
const share = "/lab/share"

// Paths inside the VM.
const (
	nomadBin      = share + "/nomad"
	pluginBin     = "/lab/bin/nvmeof-csi"
	nomadDataDir  = "/var/nomad"
	pluginState   = "/var/lib/nvmeof-csi"
	nomadAgentCfg = "/etc/nomad.d/agent.hcl"
	nomadAddr     = "http://127.0.0.1:4646"
	pluginMetrics = "127.0.0.1:9810"
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

// controllerStates returns the state of every NVMe controller of nqn, by
// controller name, straight from sysfs.
func controllerStates(nqn string) (map[string]string, error) {
	entries, err := os.ReadDir("/sys/class/nvme")
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list controllers: %w", err)
	}
	out := map[string]string{}
	for _, e := range entries {
		dir := filepath.Join("/sys/class/nvme", e.Name())
		sub, err := os.ReadFile(filepath.Join(dir, "subsysnqn"))
		if err != nil {
			continue // deleted while we looked
		}
		if strings.TrimSpace(string(sub)) != nqn {
			continue
		}
		state, err := os.ReadFile(filepath.Join(dir, "state"))
		if err != nil {
			continue
		}
		out[e.Name()] = strings.TrimSpace(string(state))
	}
	return out, nil
}

// nvmeMounts returns the mount points of NVMe block devices, by device.
func nvmeMounts() (map[string][]string, error) {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	out := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.HasPrefix(f[0], "/dev/nvme") {
			out[f[0]] = append(out[f[0]], f[1])
		}
	}
	return out, nil
}

// pluginPIDs lists the processes running the plugin binary.
func pluginPIDs() ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var pids []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err == nil && strings.TrimSpace(string(comm)) == "nvmeof-csi" {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
