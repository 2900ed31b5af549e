// Package console reads the lab VM's serial console: it picks out the
// machine-readable lines /init prints (LAB-RESULT, LAB-TIME) and kernel
// faults, and turns what it saw into the outcome of the run.
package console

import (
	"regexp"
	"strconv"
	"strings"
)

// Kind says what a console line means to the runner.
type Kind int

// Kinds of console lines.
const (
	Plain       Kind = iota // anything else: go test output, kernel chatter
	Result                  // LAB-RESULT: exit=N, the test binary's exit code
	Timing                  // LAB-TIME: step=NAME uptime=SECONDS
	KernelFault             // panic, oops, BUG: the run fails whatever the tests said
)

// Line is one classified console line.
type Line struct {
	Kind     Kind
	Text     string
	ExitCode int     // Result only
	Step     string  // Timing only
	Uptime   float64 // Timing only: seconds since the kernel started
}

var (
	resultLine = regexp.MustCompile(`^LAB-RESULT: exit=(\d+)$`)
	timingLine = regexp.MustCompile(`^LAB-TIME: step=([a-z0-9-]+) uptime=(\d+(?:\.\d+)?)$`)
	// Kernel messages carry a printk timestamp (CONFIG_PRINTK_TIME, set in
	// Debian); requiring it keeps a test that logs "BUG:" from failing the run.
	kernelLine = regexp.MustCompile(`^\[\s*\d+\.\d+\] (.*)$`)
)

// Messages the kernel prints when it is broken, not merely unhappy.
var faultMarkers = []string{
	"Kernel panic",
	"Oops:",
	"BUG:",
	"kernel BUG at",
	"general protection fault",
	"Unable to handle kernel",
}

// Classify reads one console line (without its newline).
func Classify(text string) Line {
	text = strings.TrimRight(text, "\r")
	if m := resultLine.FindStringSubmatch(text); m != nil {
		code, err := strconv.Atoi(m[1])
		if err == nil {
			return Line{Kind: Result, Text: text, ExitCode: code}
		}
	}
	if m := timingLine.FindStringSubmatch(text); m != nil {
		up, err := strconv.ParseFloat(m[2], 64)
		if err == nil {
			return Line{Kind: Timing, Text: text, Step: m[1], Uptime: up}
		}
	}
	if m := kernelLine.FindStringSubmatch(text); m != nil {
		for _, marker := range faultMarkers {
			if strings.Contains(m[1], marker) {
				return Line{Kind: KernelFault, Text: text}
			}
		}
	}
	return Line{Kind: Plain, Text: text}
}
