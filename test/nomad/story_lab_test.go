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
	t     *testing.T
	start time.Time
	rows  []storyRow
	open  string
	since time.Time
}

type storyRow struct {
	step string
	took time.Duration
	note string
}

func newStory(t *testing.T) *story {
	s := &story{t: t, start: time.Now()}
	t.Cleanup(s.summary)
	return s
}

// step begins a step; the previous one must have been finished with done.
func (s *story) step(name string) {
	s.open, s.since = name, time.Now()
	fmt.Printf("DEMO-STEP: %s ...\n", name)
}

// done ends the open step with a note for the reader.
func (s *story) done(format string, args ...any) {
	note := fmt.Sprintf(format, args...)
	took := time.Since(s.since)
	s.rows = append(s.rows, storyRow{step: s.open, took: took, note: note})
	fmt.Printf("DEMO-DONE: %s: %s (%.1fs)\n", s.open, note, took.Seconds())
}

func (s *story) summary() {
	if s.t.Failed() {
		fmt.Printf("DEMO-SUMMARY: FAILED during %q after %.1fs\n", s.open, time.Since(s.start).Seconds())
		return
	}
	width := len("step")
	for _, r := range s.rows {
		width = max(width, len(r.step))
	}
	line := func(a, b string) { fmt.Printf("DEMO-SUMMARY: %-*s  %8s\n", width, a, b) }
	line("step", "seconds")
	line(strings.Repeat("-", width), "--------")
	for _, r := range s.rows {
		line(r.step, fmt.Sprintf("%.1f", r.took.Seconds()))
	}
	line("total (in the VM)", fmt.Sprintf("%.1f", time.Since(s.start).Seconds()))
}
