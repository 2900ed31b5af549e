// Command labrun boots the lab VM once: it appends this run's binaries to
// the cached base initramfs, boots the Debian kernel in QEMU, streams the
// serial console and exits non-zero unless the tests passed with no kernel
// fault, in time. `make lab` builds its inputs and calls it.
//
//	labrun -kernel vmlinux -base base.cpio.gz -bin lab.test=./lab.test [-run REGEX] [-- extra test args]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nvmeof/nvmeof/test/lab/internal/console"
	"github.com/nvmeof/nvmeof/test/lab/internal/initrd"
	"github.com/nvmeof/nvmeof/test/lab/internal/vm"
)

// bootMargin is how much longer than the tests the VM may take: boot,
// module loading and target setup take ~5 s under TCG, on a busy host more.
const bootMargin = 2 * time.Minute

type binaryFlags []initrd.Binary

func (b *binaryFlags) String() string { return fmt.Sprint(*b) }

func (b *binaryFlags) Set(v string) error {
	name, path, ok := strings.Cut(v, "=")
	if !ok || name == "" || path == "" {
		return fmt.Errorf("%q is not NAME=PATH", v)
	}
	*b = append(*b, initrd.Binary{Name: name, Path: path})
	return nil
}

func main() {
	var (
		cfg         runConfig
		binaries    binaryFlags
		testTimeout time.Duration
	)
	flag.StringVar(&cfg.vm.QEMU, "qemu", "qemu-system-x86_64", "QEMU binary")
	flag.StringVar(&cfg.vm.Kernel, "kernel", "", "kernel to boot: vmlinux (PVH) or bzImage")
	flag.StringVar(&cfg.base, "base", "", "cached base initramfs")
	flag.StringVar(&cfg.workDir, "work", "", "directory for this run's initramfs (default: a temporary one)")
	flag.Var(&binaries, "bin", "NAME=PATH: host file put at /lab/bin/NAME (repeatable); lab.test is the test binary")
	flag.StringVar(&cfg.run, "run", "", "regular expression selecting lab tests (go test -run)")
	flag.DurationVar(&testTimeout, "test-timeout", 8*time.Minute, "go test -timeout inside the VM")
	flag.DurationVar(&cfg.vm.Timeout, "timeout", 0, "hard bound on the whole VM run (default: test-timeout + 2m)")
	flag.IntVar(&cfg.vm.MemoryMiB, "memory", 1024, "guest memory in MiB")
	flag.IntVar(&cfg.vm.CPUs, "cpus", 1, "guest CPUs")
	flag.StringVar(&cfg.vm.Share, "share", "", "host directory shared read-only at /lab/share (9p)")
	flag.StringVar(&cfg.vm.Append, "append", "", "extra kernel command line")
	flag.BoolVar(&cfg.shell, "shell", false, "set the target up and give a shell on the console instead of running tests")
	flag.StringVar(&cfg.label, "kernel-label", "", "the kernel's name in result lines and the summary (6.1, 6.12)")
	flag.Parse()

	cfg.vm.Interactive = cfg.shell
	if cfg.vm.Timeout == 0 {
		cfg.vm.Timeout = testTimeout + bootMargin
	}
	cfg.overlay = initrd.Overlay{
		Mode:     initrd.ModeTest,
		Binaries: binaries,
		Share:    cfg.vm.Share != "",
		TestArgs: testArgs(cfg.run, testTimeout, flag.Args()),
	}
	if cfg.shell {
		cfg.overlay.Mode = initrd.ModeShell
	}

	log := hclog.New(&hclog.LoggerOptions{Name: "labrun", Output: os.Stderr})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, log, cfg)
	stop()
	if err != nil {
		log.Error("lab run failed", "error", err)
		os.Exit(1)
	}
}

func testArgs(run string, timeout time.Duration, extra []string) []string {
	args := []string{"-test.v", "-test.timeout=" + timeout.String()}
	if run != "" {
		args = append(args, "-test.run="+run)
	}
	return append(args, extra...)
}

type runConfig struct {
	vm      vm.Config
	overlay initrd.Overlay
	base    string
	workDir string
	run     string
	shell   bool
	label   string
}

func run(ctx context.Context, log hclog.Logger, cfg runConfig) error {
	if cfg.base == "" {
		return errors.New("-base is required")
	}
	workDir := cfg.workDir
	if workDir == "" {
		tmp, err := os.MkdirTemp("", "labrun-")
		if err != nil {
			return fmt.Errorf("work directory: %w", err)
		}
		defer func() {
			if err := os.RemoveAll(tmp); err != nil {
				log.Warn("cannot remove the work directory", "dir", tmp, "error", err)
			}
		}()
		workDir = tmp
	}
	cfg.vm.Initrd = filepath.Join(workDir, "initrd.img")
	if err := initrd.Compose(cfg.base, cfg.overlay, cfg.vm.Initrd); err != nil {
		return fmt.Errorf("compose initramfs: %w", err)
	}

	log.Info("booting lab VM", "kernel_label", cfg.label, "kernel", cfg.vm.Kernel, "memory_mib", cfg.vm.MemoryMiB,
		"cpus", cfg.vm.CPUs, "timeout", cfg.vm.Timeout, "run", cfg.run, "share", cfg.vm.Share)
	start := time.Now()
	var out io.Writer = os.Stdout
	if cfg.label != "" && !cfg.shell {
		out = &labelWriter{w: os.Stdout, label: "[" + cfg.label + "] "}
	}
	outcome, err := vm.Run(ctx, cfg.vm, out)
	wall := time.Since(start).Round(10 * time.Millisecond)
	if err != nil {
		return err
	}
	for _, d := range outcome.Durations() {
		log.Info("guest step", "kernel_label", cfg.label, "step", d.Step, "guest_seconds", fmt.Sprintf("%.2f", d.Uptime),
			"host_seconds", fmt.Sprintf("%.2f", d.Wall.Seconds()))
	}
	log.Info("VM finished", "kernel_label", cfg.label, "wall", wall)
	if cfg.shell {
		return nil
	}
	printSummary(os.Stdout, cfg.label, outcome)
	if err := outcome.Err(); err != nil {
		if tail := outcome.Tail(); len(tail) > 0 {
			fmt.Fprintf(os.Stderr, "---- last %d console lines ----\n%s\n----\n", len(tail), strings.Join(tail, "\n"))
		} else {
			fmt.Fprintln(os.Stderr, "---- the console stayed silent ----")
		}
		return err
	}
	log.Info("lab tests passed")
	return nil
}

// labelWriter puts the kernel's label in front of every go test verdict
// line, so a result read alone still says which kernel it ran on. vm.Run
// writes whole lines.
type labelWriter struct {
	w     io.Writer
	label string
}

func (l *labelWriter) Write(p []byte) (int, error) {
	line := strings.TrimLeft(string(p), " ")
	if strings.HasPrefix(line, "--- ") || strings.HasPrefix(line, "=== RUN") || line == "PASS\n" || line == "FAIL\n" {
		if _, err := io.WriteString(l.w, l.label); err != nil {
			return 0, err //nolint:wrapcheck // a console write: nothing to add
		}
	}
	return l.w.Write(p) //nolint:wrapcheck // a console write: nothing to add
}

// printSummary lists the skipped tests with their reasons, then the
// closing line "lab-KERNEL: N passed, N failed, N skipped".
func printSummary(w io.Writer, label string, o *console.Outcome) {
	name := "lab"
	if label != "" {
		name += "-" + label
	}
	for _, t := range o.Results.Skipped() {
		_, _ = fmt.Fprintf(w, "%s skipped %s: %s\n", name, t.Name, t.Reason)
	}
	_, _ = fmt.Fprintln(w, o.Results.Summary(name))
}
