//go:build lab

package nomade2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
	mount "k8s.io/mount-utils"

	"github.com/nvmeof/nvmeof/test/nomad/nomadclient"
)

// taskEnv carries a task's launch to this binary re-executed in the
// task's own mount namespace (see nsExec).
const taskEnv = "NOMADCLIENT_TASK"

// TestMain: the lab test binary is also the exec driver's task launcher.
func TestMain(m *testing.M) {
	if launch := os.Getenv(taskEnv); launch != "" {
		err := launchTask(launch)
		fmt.Fprintln(os.Stderr, "task launch:", err)
		os.Exit(127)
	}
	os.Exit(m.Run())
}

// taskLogs is where a task's stdout and stderr go, as in Nomad's alloc
// dir: <data_dir>/alloc/<alloc>/alloc/logs/<task>.stdout.0.
func taskLogs(allocID, task string) (stdout, stderr string) {
	dir := filepath.Join(nomadDataDir, "alloc", allocID, "alloc", "logs")
	return filepath.Join(dir, task+".stdout.0"), filepath.Join(dir, task+".stderr.0")
}

// procHandle is a started task process, in its own process group so that
// a stop reaches what it started (a shell's sleep) as Nomad's executor's
// does.
type procHandle struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

func startProc(cmd *exec.Cmd, allocID, task string) (*procHandle, error) {
	out, errOut := taskLogs(allocID, task)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return nil, fmt.Errorf("task log dir: %w", err)
	}
	var files []*os.File
	for _, p := range []string{out, errOut} {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644) //nolint:gosec // task logs are readable, as Nomad's
		if err != nil {
			return nil, fmt.Errorf("task log: %w", err)
		}
		files = append(files, f)
	}
	cmd.Stdout, cmd.Stderr = files[0], files[1]
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	err := cmd.Start()
	for _, f := range files {
		_ = f.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	h := &procHandle{cmd: cmd, exited: make(chan struct{})}
	go func() {
		h.err = cmd.Wait()
		close(h.exited)
	}()
	return h, nil
}

func (h *procHandle) Exited() <-chan struct{} { return h.exited }
func (h *procHandle) Err() error              { return h.err }

func (h *procHandle) Signal(sig os.Signal) error {
	s, ok := sig.(syscall.Signal)
	if !ok {
		return fmt.Errorf("signal %v", sig)
	}
	if err := syscall.Kill(-h.cmd.Process.Pid, s); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal task: %w", err)
	}
	return nil
}

// PID is the task's process.
func (h *procHandle) PID() int { return h.cmd.Process.Pid }

func commandOf(spec nomadclient.TaskSpec) (string, []string, error) {
	command, ok := spec.Config["command"].(string)
	if !ok || command == "" {
		return "", nil, fmt.Errorf("task %s: config.command is required", spec.Name)
	}
	var args []string
	if raw, ok := spec.Config["args"].([]any); ok {
		for _, a := range raw {
			s, ok := a.(string)
			if !ok {
				return "", nil, fmt.Errorf("task %s: config.args holds %v, not a string", spec.Name, a)
			}
			args = append(args, s)
		}
	}
	return command, args, nil
}

func envOf(spec nomadclient.TaskSpec) []string {
	env := os.Environ()
	for k, v := range spec.Env {
		env = append(env, k+"="+v)
	}
	return env
}

// rawExec is Nomad's raw_exec: the command on the host, as root, with the
// host's view of the file system; it cannot mount volumes into a task.
type rawExec struct{}

func (rawExec) FSIsolation() bool   { return false }
func (rawExec) MountsVolumes() bool { return false }

func (rawExec) Start(_ context.Context, spec nomadclient.TaskSpec) (nomadclient.TaskHandle, error) {
	command, args, err := commandOf(spec)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(command, args...) //nolint:noctx // stopped through the handle's signals, as Nomad stops tasks
	cmd.Env = envOf(spec)
	return startProc(cmd, spec.AllocID, spec.Name)
}

// nsExec stands for Nomad's exec driver where it matters to a CSI volume:
// the task runs in its own mount namespace, where each volume_mount binds
// the volume's host target at its destination (read-only when asked), and
// the client's own mounts are out of its sight. It does not chroot.
type nsExec struct{}

func (nsExec) FSIsolation() bool   { return true }
func (nsExec) MountsVolumes() bool { return true }

// taskLaunch is what the re-executed binary does before becoming the task.
type taskLaunch struct {
	Command string
	Args    []string
	Mounts  []nomadclient.TaskMount
	// Hide: mounts at or below this directory are detached in the task's
	// namespace after the binds (the client's staging and publish mounts).
	Hide string
}

func (nsExec) Start(_ context.Context, spec nomadclient.TaskSpec) (nomadclient.TaskHandle, error) {
	command, args, err := commandOf(spec)
	if err != nil {
		return nil, err
	}
	launch, err := json.Marshal(taskLaunch{Command: command, Args: args, Mounts: spec.Mounts, Hide: nomadDataDir})
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", spec.Name, err)
	}
	cmd := exec.Command("/proc/self/exe") //nolint:noctx // stopped through the handle's signals
	cmd.Env = append(envOf(spec), taskEnv+"="+string(launch))
	// Go makes / recursively private in the new namespace before exec.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	return startProc(cmd, spec.AllocID, spec.Name)
}

// launchTask runs in the task's new mount namespace: bind the volumes,
// hide the client's mounts, then become the task. It returns only on
// failure.
func launchTask(raw string) error {
	var l taskLaunch
	if err := json.Unmarshal([]byte(raw), &l); err != nil {
		return fmt.Errorf("decode launch: %w", err)
	}
	for _, m := range l.Mounts {
		fi, err := os.Stat(m.Source)
		if err != nil {
			return fmt.Errorf("volume mount source: %w", err)
		}
		if fi.IsDir() {
			err = os.MkdirAll(m.Destination, 0o755)
		} else {
			err = os.WriteFile(m.Destination, nil, 0o600) // a device node binds onto a file
		}
		if err != nil {
			return fmt.Errorf("volume mount destination: %w", err)
		}
		if err := unix.Mount(m.Source, m.Destination, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s at %s: %w", m.Source, m.Destination, err)
		}
		if m.ReadOnly {
			if err := unix.Mount("", m.Destination, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
				return fmt.Errorf("read-only %s: %w", m.Destination, err)
			}
		}
	}
	infos, err := mount.ParseMountInfo("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("mount table: %w", err)
	}
	var hide []string
	for _, mi := range infos {
		if mi.MountPoint == l.Hide || strings.HasPrefix(mi.MountPoint, l.Hide+"/") {
			hide = append(hide, mi.MountPoint)
		}
	}
	slices.SortFunc(hide, func(a, b string) int { return len(b) - len(a) })
	for _, mp := range hide {
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("hide %s: %w", mp, err)
		}
	}
	return fmt.Errorf("exec %s: %w", l.Command, syscall.Exec(l.Command, append([]string{l.Command}, l.Args...), os.Environ()))
}

// taskOutput reads a task's stdout (or stderr) so far.
func taskOutput(allocID, task, stream string) (string, error) {
	out, errOut := taskLogs(allocID, task)
	path := out
	if stream == "stderr" {
		path = errOut
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("task log: %w", err)
	}
	return string(b), nil
}

// lastMatch returns the last line of a task's stdout that starts with
// prefix, without the prefix.
func lastMatch(allocID, task, prefix string) (string, error) {
	out, err := taskOutput(allocID, task, "stdout")
	if err != nil {
		return "", err
	}
	var last string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			last = rest
		}
	}
	if last == "" {
		return "", fmt.Errorf("no %q line yet in %s", prefix, tail(out, 3))
	}
	return last, nil
}
