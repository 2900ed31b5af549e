package console

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		text string
		want Line
	}{
		{name: "result", text: "LAB-RESULT: exit=0", want: Line{Kind: Result, Text: "LAB-RESULT: exit=0"}},
		{name: "result with CR", text: "LAB-RESULT: exit=1\r", want: Line{Kind: Result, Text: "LAB-RESULT: exit=1", ExitCode: 1}},
		{name: "result not alone", text: "x LAB-RESULT: exit=0", want: Line{Kind: Plain, Text: "x LAB-RESULT: exit=0"}},
		{name: "result without code", text: "LAB-RESULT: exit=", want: Line{Kind: Plain, Text: "LAB-RESULT: exit="}},
		{
			name: "timing", text: "LAB-TIME: step=modules uptime=3.52",
			want: Line{Kind: Timing, Text: "LAB-TIME: step=modules uptime=3.52", Step: "modules", Uptime: 3.52},
		},
		{
			name: "panic", text: "[    4.100000] Kernel panic - not syncing: Attempted to kill init!",
			want: Line{Kind: KernelFault, Text: "[    4.100000] Kernel panic - not syncing: Attempted to kill init!"},
		},
		{
			name: "oops", text: "[   12.5] Oops: 0000 [#1] PREEMPT SMP NOPTI",
			want: Line{Kind: KernelFault, Text: "[   12.5] Oops: 0000 [#1] PREEMPT SMP NOPTI"},
		},
		{
			name: "null dereference", text: "[ 9.0] BUG: kernel NULL pointer dereference, address: 0000000000000008",
			want: Line{Kind: KernelFault, Text: "[ 9.0] BUG: kernel NULL pointer dereference, address: 0000000000000008"},
		},
		{
			name: "test output mentioning BUG", text: "    smoke_lab_test.go:10: BUG: not a kernel line",
			want: Line{Kind: Plain, Text: "    smoke_lab_test.go:10: BUG: not a kernel line"},
		},
		{
			name: "ordinary kernel message", text: "[    3.2] nvmet: adding nsid 1 to subsystem nqn.2026-01.io.nvmeof.lab:one",
			want: Line{Kind: Plain, Text: "[    3.2] nvmet: adding nsid 1 to subsystem nqn.2026-01.io.nvmeof.lab:one"},
		},
		{name: "go test pass", text: "--- PASS: TestSmoke (0.01s)", want: Line{Kind: Plain, Text: "--- PASS: TestSmoke (0.01s)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.text); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Classify(%q) = %+v, want %+v", tt.text, got, tt.want)
			}
		})
	}
}

func TestOutcomeErr(t *testing.T) {
	tests := []struct {
		name     string
		lines    []string
		timedOut bool
		want     []error
	}{
		{name: "pass", lines: []string{"PASS", "LAB-RESULT: exit=0"}},
		{name: "tests failed", lines: []string{"FAIL", "LAB-RESULT: exit=1"}, want: []error{ErrTestsFailed}},
		{name: "no result line", lines: []string{"PASS"}, want: []error{ErrNoResult}},
		{name: "hang", lines: []string{"=== RUN   TestX"}, timedOut: true, want: []error{ErrTimeout}},
		{
			name:  "oops though tests passed",
			lines: []string{"[ 5.0] Oops: 0002 [#1] SMP", "LAB-RESULT: exit=0"},
			want:  []error{ErrKernelFault},
		},
		{
			name:  "panic before any result",
			lines: []string{"[ 1.0] Kernel panic - not syncing: VFS: Unable to mount root fs"},
			want:  []error{ErrKernelFault, ErrNoResult},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewOutcome(10)
			for _, l := range tt.lines {
				o.Observe(l, 0)
			}
			o.TimedOut = tt.timedOut
			err := o.Err()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Err() = %v, want nil", err)
				}
				return
			}
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("Err() = %v, want it to match %v", err, w)
				}
			}
		})
	}
}

func TestOutcomeTailKeepsLastLines(t *testing.T) {
	o := NewOutcome(2)
	for _, l := range []string{"a", "b", "c"} {
		o.Observe(l, 0)
	}
	if got, want := o.Tail(), []string{"b", "c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Tail() = %q, want %q", got, want)
	}
}

func TestOutcomeDurations(t *testing.T) {
	o := NewOutcome(0)
	o.Observe("LAB-TIME: step=init uptime=2.5", 3*time.Second)
	o.Observe("not a mark", 3500*time.Millisecond)
	o.Observe("LAB-TIME: step=modules uptime=3.25", 4*time.Second)
	want := []Mark{{Step: "init", Uptime: 2.5, Wall: 3 * time.Second}, {Step: "modules", Uptime: 0.75, Wall: time.Second}}
	if got := o.Durations(); !reflect.DeepEqual(got, want) {
		t.Errorf("Durations() = %+v, want %+v", got, want)
	}
}
