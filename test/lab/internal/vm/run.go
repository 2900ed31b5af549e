package vm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/nvmeof/nvmeof/test/lab/internal/console"
)

// faultGrace is how long the VM may go on after a kernel fault: long enough
// for the trace to reach the console, short enough not to wait for the
// timeout when the fault hung the tests.
const faultGrace = 20 * time.Second

// backstopDelay is how long after timeout(1) should have ended the VM the
// runner stops it itself.
const backstopDelay = 5 * time.Second

// tailLines is how much console a failure report shows.
const tailLines = 80

// Run boots the VM and copies its console to out line by line. The returned
// Outcome says what the console showed; the error is about running QEMU
// itself (it could not start, or exited non-zero without a result line).
func Run(ctx context.Context, cfg Config, out io.Writer) (*console.Outcome, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// timeout(1) inside the command normally ends a hung VM; this context is
	// the backstop for when it does not, and the way a fault or an
	// interrupt stops the VM early.
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout+backstopDelay)
	defer cancel()

	argv := cfg.Command()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// SIGTERM, not SIGKILL: timeout(1) passes it on to QEMU, whereas a
	// killed timeout(1) leaves QEMU running and holding the console pipe.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	cmd.Stderr = os.Stderr
	outcome := console.NewOutcome(tailLines)
	if cfg.Interactive {
		cmd.Stdin, cmd.Stdout = os.Stdin, out
		err := cmd.Run()
		outcome.TimedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
		return outcome, qemuError(err, outcome)
	}

	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("qemu stdout: %w", err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cfg.QEMU, err)
	}
	copyErr := watch(stdout, out, outcome, start, cancel)
	// Always waited for, so QEMU is never left behind, whatever went wrong.
	err = cmd.Wait()
	outcome.TimedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
	if copyErr != nil {
		return outcome, copyErr
	}
	return outcome, qemuError(err, outcome)
}

// watch copies the console to out until QEMU closes it, classifying each
// line; a kernel fault stops the VM after faultGrace. It reports only a
// failure to write out, after which it stops the VM.
func watch(serial io.Reader, out io.Writer, outcome *console.Outcome, start time.Time, stop func()) error {
	var faultTimer *time.Timer
	defer func() {
		if faultTimer != nil {
			faultTimer.Stop()
		}
	}()
	scanner := bufio.NewScanner(serial)
	scanner.Buffer(make([]byte, 64*1024), 1024*1024)
	for scanner.Scan() {
		line := outcome.Observe(scanner.Text(), time.Since(start))
		if _, err := fmt.Fprintln(out, line.Text); err != nil {
			stop()
			return fmt.Errorf("copy console: %w", err)
		}
		if line.Kind == console.KernelFault && faultTimer == nil {
			faultTimer = time.AfterFunc(faultGrace, stop)
		}
	}
	if scanner.Err() != nil {
		// A line longer than the buffer: pass the rest through unparsed
		// rather than leave QEMU blocked on a full pipe.
		if _, err := io.Copy(out, serial); err != nil {
			stop()
			return fmt.Errorf("copy console: %w", err)
		}
	}
	return nil
}

// qemuError keeps QEMU's exit status only when the console does not already
// explain the run: after a timeout or a fault QEMU is killed on purpose,
// and timeout(1) exits 124.
func qemuError(err error, o *console.Outcome) error {
	if err == nil || o.TimedOut || len(o.Faults) > 0 {
		return nil
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && exitErr.ExitCode() == 124 {
		o.TimedOut = true
		return nil
	}
	return fmt.Errorf("qemu: %w", err)
}
