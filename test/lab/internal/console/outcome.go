package console

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors an Outcome reports; the runner prints the console tail with them.
var (
	ErrNoResult    = errors.New("the VM stopped without printing LAB-RESULT")
	ErrTimeout     = errors.New("the VM did not finish in time")
	ErrKernelFault = errors.New("the kernel reported a fault")
	ErrTestsFailed = errors.New("the lab tests failed")
)

// Mark is one LAB-TIME step.
type Mark struct {
	Step   string
	Uptime float64 // guest seconds since the kernel started
	// Wall is the host time since QEMU started when the line arrived: it
	// adds what the guest clock cannot see (QEMU start, loading the kernel).
	Wall time.Duration
}

// Outcome is what the console showed over a whole run.
type Outcome struct {
	HaveResult bool
	ExitCode   int
	Faults     []string
	Marks      []Mark
	TimedOut   bool
	// Results are the go test verdicts the console showed.
	Results  Results
	tail     []string
	tailSize int
}

// NewOutcome keeps the last tailSize console lines for the failure report.
func NewOutcome(tailSize int) *Outcome {
	return &Outcome{tailSize: tailSize}
}

// Observe records one console line, which arrived elapsed after QEMU
// started, and returns its classification.
func (o *Outcome) Observe(text string, elapsed time.Duration) Line {
	line := Classify(text)
	switch line.Kind {
	case Result:
		o.HaveResult, o.ExitCode = true, line.ExitCode
	case Timing:
		o.Marks = append(o.Marks, Mark{Step: line.Step, Uptime: line.Uptime, Wall: elapsed})
	case KernelFault:
		o.Faults = append(o.Faults, line.Text)
	case Plain:
		o.Results.observe(line.Text)
	}
	if o.tailSize > 0 {
		if len(o.tail) == o.tailSize {
			o.tail = o.tail[1:]
		}
		o.tail = append(o.tail, line.Text)
	}
	return line
}

// Tail returns the last console lines seen, oldest first.
func (o *Outcome) Tail() []string {
	return append([]string(nil), o.tail...)
}

// Err is nil only for a run that printed LAB-RESULT: exit=0 in time and
// without any kernel fault. Every reason that applies is reported.
func (o *Outcome) Err() error {
	var errs []error
	if o.TimedOut {
		errs = append(errs, ErrTimeout)
	}
	if len(o.Faults) > 0 {
		errs = append(errs, fmt.Errorf("%w: %s", ErrKernelFault, strings.Join(o.Faults, " | ")))
	}
	switch {
	case !o.HaveResult:
		if !o.TimedOut {
			errs = append(errs, ErrNoResult)
		}
	case o.ExitCode != 0:
		errs = append(errs, fmt.Errorf("%w: test binary exit code %d", ErrTestsFailed, o.ExitCode))
	}
	return errors.Join(errs...)
}

// Durations turns the LAB-TIME marks into step durations: each step is
// measured from the previous mark, the first from kernel (Uptime) or QEMU
// (Wall) start.
func (o *Outcome) Durations() []Mark {
	out := make([]Mark, 0, len(o.Marks))
	var prev Mark
	for _, m := range o.Marks {
		out = append(out, Mark{Step: m.Step, Uptime: m.Uptime - prev.Uptime, Wall: m.Wall - prev.Wall})
		prev = m
	}
	return out
}
