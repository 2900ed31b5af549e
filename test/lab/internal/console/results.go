package console

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// TestResult is one test's verdict as `go test -v` printed it.
type TestResult struct {
	Name    string // TestX or TestX/sub
	Verdict string // PASS, FAIL or SKIP
	Elapsed time.Duration
	// Reason is what a skipped test said (its t.Skip message), "" for the
	// others.
	Reason string
}

// Results tallies the verdicts of one run.
type Results struct {
	Tests []TestResult
	// current is the test whose log lines the console shows now;
	// lastLog the last line each test logged: a skip's reason.
	current string
	lastLog map[string]string
}

var (
	verdictLine = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+) \((\d+(?:\.\d+)?)s\)$`)
	// go test -v streams a test's log lines, indented, after "=== RUN" (or
	// "=== NAME"/"=== CONT" when the output switches tests) and before
	// its verdict.
	switchLine = regexp.MustCompile(`^=== (?:RUN|NAME|CONT) +(\S+)$`)
	logLine    = regexp.MustCompile(`^\s+\S+\.go:\d+: (.*)$`)
)

// observe reads one console line.
func (r *Results) observe(text string) {
	if m := switchLine.FindStringSubmatch(text); m != nil {
		r.current = m[1]
		return
	}
	if m := verdictLine.FindStringSubmatch(text); m != nil {
		secs, _ := time.ParseDuration(m[3] + "s")
		t := TestResult{Name: m[2], Verdict: m[1], Elapsed: secs}
		if t.Verdict == "SKIP" {
			t.Reason = r.lastLog[t.Name]
		}
		r.Tests = append(r.Tests, t)
		return
	}
	if m := logLine.FindStringSubmatch(text); m != nil && r.current != "" {
		if r.lastLog == nil {
			r.lastLog = map[string]string{}
		}
		r.lastLog[r.current] = strings.TrimSpace(m[1])
	}
}

// Count returns the verdicts of top-level tests (subtests are part of
// their parent's).
func (r *Results) Count() (passed, failed, skipped int) {
	for _, t := range r.Tests {
		if strings.Contains(t.Name, "/") {
			continue
		}
		switch t.Verdict {
		case "PASS":
			passed++
		case "FAIL":
			failed++
		case "SKIP":
			skipped++
		}
	}
	return passed, failed, skipped
}

// Skipped returns every skipped test, subtests included, with its reason.
func (r *Results) Skipped() []TestResult {
	var out []TestResult
	for _, t := range r.Tests {
		if t.Verdict == "SKIP" {
			out = append(out, t)
		}
	}
	return out
}

// Summary is the closing line of a run: "LABEL: N passed, N failed, N skipped".
func (r *Results) Summary(label string) string {
	p, f, s := r.Count()
	return fmt.Sprintf("%s: %d passed, %d failed, %d skipped", label, p, f, s)
}
