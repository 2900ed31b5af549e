//go:build lab

package nomade2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// story narrates the run for `make demo`: each step prints one line when it
// starts and one when it ends ("DEMO-STEP"/"DEMO-DONE"), and the run ends
// with a timing table ("DEMO-SUMMARY"). The host's demo runner shows only
// these lines; `make nomad-e2e` shows everything.
type story struct {
	t          *testing.T
	start      time.Time
	rows       []storyRow
	open       string
	since      time.Time
	failedOpen bool // the test had failed before the open step began
	stepFailed bool // errorf was called during the open step
}

type storyRow struct {
	step   string
	took   time.Duration
	note   string
	failed bool
}

func newStory(t *testing.T) *story {
	s := &story{t: t, start: time.Now()}
	t.Cleanup(s.summary)
	return s
}

// step begins a step; the previous one must have been finished with done.
func (s *story) step(name string) {
	s.open, s.since, s.failedOpen, s.stepFailed = name, time.Now(), s.t.Failed(), false
	fmt.Printf("DEMO-STEP: %s ...\n", name)
}

// done ends the open step with a note for the reader.
func (s *story) done(format string, args ...any) {
	note := fmt.Sprintf(format, args...)
	took := time.Since(s.since)
	// A check of this step that reported an error (t.Errorf) and let the
	// story go on marks the step.
	failed := s.stepFailed || (s.t.Failed() && !s.failedOpen)
	s.rows = append(s.rows, storyRow{step: s.open, took: took, note: note, failed: failed})
	mark := ""
	if failed {
		mark = "FAILED: "
	}
	fmt.Printf("DEMO-DONE: %s%s: %s (%.1fs)\n", mark, s.open, note, took.Seconds())
	s.open = ""
}

// errorf reports a failed check of the open step and lets the story go
// on: the step is marked FAILED.
func (s *story) errorf(format string, args ...any) {
	s.t.Helper()
	s.stepFailed = true
	s.t.Errorf(format, args...)
}

func (s *story) summary() {
	width := len("step")
	for _, r := range s.rows {
		width = max(width, len(r.step))
	}
	line := func(a, b, c string) { fmt.Printf("DEMO-SUMMARY: %-*s  %8s  %s\n", width, a, b, c) }
	line("step", "seconds", "")
	line(strings.Repeat("-", width), "--------", "")
	for _, r := range s.rows {
		verdict := "ok"
		if r.failed {
			verdict = "FAILED"
		}
		line(r.step, fmt.Sprintf("%.1f", r.took.Seconds()), verdict)
	}
	line("total (in the VM)", fmt.Sprintf("%.1f", time.Since(s.start).Seconds()), "")
	if s.open != "" {
		fmt.Printf("DEMO-SUMMARY: FAILED during %q\n", s.open)
	} else if s.t.Failed() {
		fmt.Printf("DEMO-SUMMARY: FAILED: see the steps marked above\n")
	}
}
