// Package disktest simulates the file-system tools mount-utils runs (blkid,
// mkfs.*, fsck, resize2fs, xfs_growfs) on plain files that stand in for
// block devices, through k8s.io/utils/exec/testing's FakeCmd. A "file
// system" is a signature at the start of the file, so blkid sees what mkfs
// wrote and a formatted device is never formatted again.
package disktest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"

	utilexec "k8s.io/utils/exec"
	testingexec "k8s.io/utils/exec/testing"
)

const signaturePrefix = "disktest-fs:"

// Exec runs the simulated tools. Safe for concurrent use.
type Exec struct {
	mu    sync.Mutex
	calls [][]string
	// Fail makes a tool (by name, e.g. "mkfs.ext4") fail with this exit status.
	fail map[string]int
}

var _ utilexec.Interface = (*Exec)(nil)

// New returns a simulator with no failures.
func New() *Exec { return &Exec{fail: map[string]int{}} }

// FailTool makes every later run of tool exit with status.
func (e *Exec) FailTool(tool string, status int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fail[tool] = status
}

// Calls returns the argument vectors run so far.
func (e *Exec) Calls() [][]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([][]string, len(e.calls))
	copy(out, e.calls)
	return out
}

// Ran reports how many times tool ran.
func (e *Exec) Ran(tool string) int {
	n := 0
	for _, c := range e.Calls() {
		if c[0] == tool {
			n++
		}
	}
	return n
}

// Format writes a file-system signature to device, as mkfs would.
func Format(device, fstype string) error {
	f, err := os.OpenFile(device, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("disktest: open %s: %w", device, err)
	}
	_, err = f.WriteAt([]byte(signaturePrefix+fstype+"\n"), 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("disktest: write signature: %w", err)
	}
	return nil
}

// FSType reads device's signature; "" when blank. Besides its own
// signature it knows a real ext (ext4) or xfs superblock by its magic, as
// a test may write one to take the plugin's own superblock probe.
func FSType(device string) (string, error) {
	f, err := os.Open(device)
	if err != nil {
		return "", fmt.Errorf("disktest: open %s: %w", device, err)
	}
	defer func() { _ = f.Close() }()
	buf := make([]byte, 2048)
	n, _ := f.ReadAt(buf, 0)
	buf = buf[:n]
	line, _, _ := bytes.Cut(buf, []byte("\n"))
	if fstype, ok := strings.CutPrefix(string(line), signaturePrefix); ok {
		return fstype, nil
	}
	switch {
	case bytes.HasPrefix(buf, []byte("XFSB")):
		return "xfs", nil
	case len(buf) >= 1082 && buf[1080] == 0x53 && buf[1081] == 0xef:
		return "ext4", nil
	}
	return "", nil
}

// Command returns a FakeCmd whose every way of running simulates the tool.
func (e *Exec) Command(cmd string, args ...string) utilexec.Cmd {
	argv := append([]string{cmd}, args...)
	e.mu.Lock()
	e.calls = append(e.calls, argv)
	status := e.fail[cmd]
	e.mu.Unlock()
	run := func() ([]byte, []byte, error) {
		if status != 0 {
			return []byte(cmd + ": simulated failure"), nil, &testingexec.FakeExitError{Status: status}
		}
		out, err := simulate(cmd, args)
		return out, nil, err
	}
	fc := &testingexec.FakeCmd{
		CombinedOutputScript: []testingexec.FakeAction{run},
		OutputScript:         []testingexec.FakeAction{run},
		RunScript:            []testingexec.FakeAction{run},
	}
	return testingexec.InitFakeCmd(fc, cmd, args...)
}

// CommandContext ignores ctx: every simulated tool returns at once.
func (e *Exec) CommandContext(_ context.Context, cmd string, args ...string) utilexec.Cmd {
	return e.Command(cmd, args...)
}

// LookPath finds every simulated tool.
func (e *Exec) LookPath(file string) (string, error) { return "/sbin/" + file, nil }

func simulate(cmd string, args []string) ([]byte, error) {
	last := ""
	if len(args) > 0 {
		last = args[len(args)-1]
	}
	switch {
	case cmd == "blkid":
		fstype, err := FSType(last)
		if err != nil {
			return nil, &testingexec.FakeExitError{Status: 4}
		}
		if fstype == "" {
			return nil, &testingexec.FakeExitError{Status: 2}
		}
		return []byte("TYPE=" + fstype + "\n"), nil
	case strings.HasPrefix(cmd, "mkfs."):
		if err := Format(last, strings.TrimPrefix(cmd, "mkfs.")); err != nil {
			return []byte(err.Error()), &testingexec.FakeExitError{Status: 1}
		}
		return nil, nil
	case cmd == "fsck", cmd == "resize2fs", cmd == "xfs_growfs":
		return nil, nil
	}
	return []byte(cmd + ": not simulated"), &testingexec.FakeExitError{Status: 127}
}
