// Package vm boots the lab's Debian kernel in QEMU (TCG, no network device,
// serial console on stdout) and watches the console until the guest powers
// off, the time is up or the kernel breaks.
package vm

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ShareTag is the 9p mount tag of the optional read-only host share; /init
// mounts it at /lab/share.
const ShareTag = "labshare"

// Kernel command line: serial console, reboot (and so exit, with
// -no-reboot) at once on panic, and a quiet boot so the console is mostly
// test output.
const baseAppend = "console=ttyS0 panic=-1 quiet"

// Config says how to boot one lab VM.
type Config struct {
	QEMU      string        // qemu-system-x86_64
	Kernel    string        // uncompressed vmlinux (PVH entry) or a bzImage
	Initrd    string        // initramfs: cached base image + per-run overlay
	MemoryMiB int           // guest memory
	CPUs      int           // vCPUs; TCG runs them on one host thread each
	Append    string        // extra kernel command line
	Share     string        // host directory shared read-only over 9p; "" for none
	Timeout   time.Duration // hard bound on the whole VM run
	// Interactive connects the console to the caller's terminal (lab-shell).
	Interactive bool
}

// ErrInvalidConfig wraps every Config validation failure.
var ErrInvalidConfig = errors.New("invalid VM config")

// Validate checks the fields a QEMU run needs.
func (c Config) Validate() error {
	var errs []error
	if c.QEMU == "" {
		errs = append(errs, errors.New("qemu binary is empty"))
	}
	if c.Kernel == "" || c.Initrd == "" {
		errs = append(errs, errors.New("kernel and initrd are required"))
	}
	if c.MemoryMiB < 256 {
		errs = append(errs, fmt.Errorf("memory %d MiB is below 256 MiB", c.MemoryMiB))
	}
	if c.CPUs < 1 {
		errs = append(errs, fmt.Errorf("cpus %d is below 1", c.CPUs))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout %s must be positive", c.Timeout))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

// Command returns the argument vector: qemu under timeout(1), so the VM dies
// even if this process is killed before it can stop QEMU itself.
func (c Config) Command() []string {
	// timeout(1) counts whole seconds; round up so it never fires first.
	secs := int((c.Timeout + time.Second - 1) / time.Second)
	args := []string{
		"timeout", "--kill-after=10", strconv.Itoa(secs),
		c.QEMU,
		"-accel", "tcg",
		"-m", strconv.Itoa(c.MemoryMiB),
		"-smp", strconv.Itoa(c.CPUs),
		"-kernel", c.Kernel,
		"-initrd", c.Initrd,
		"-append", c.kernelCommandLine(),
		"-nic", "none",
		"-display", "none",
		"-monitor", "none",
		"-serial", "stdio",
		"-no-reboot",
	}
	if c.Share != "" {
		args = append(args, "-virtfs",
			"local,path="+c.Share+",mount_tag="+ShareTag+",security_model=none,readonly=on")
	}
	return args
}

func (c Config) kernelCommandLine() string {
	if c.Append == "" {
		return baseAppend
	}
	return baseAppend + " " + c.Append
}
