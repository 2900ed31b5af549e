package console

import (
	"reflect"
	"testing"
	"time"
)

// A stretch of `go test -v` output as the lab VM prints it, kernel
// messages interleaved.
var goTestOutput = []string{
	"=== RUN   TestSmokeRawConnect",
	"[    6.1] nvme nvme0: new ctrl: NQN \"nqn.2026-01.io.nvmeof.lab:one\"",
	"--- PASS: TestSmokeRawConnect (0.42s)",
	"=== RUN   TestAuthStage",
	"    auth_lab_test.go:30: an earlier line",
	"    auth_lab_test.go:31: kernel 6.1.0-41-amd64 lacks CONFIG_NVME_HOST_AUTH (host DH-HMAC-CHAP)",
	"--- SKIP: TestAuthStage (0.00s)",
	"=== RUN   TestTable",
	"=== RUN   TestTable/one",
	"    csi_lab_test.go:9: one logs",
	"=== RUN   TestTable/two",
	"    csi_lab_test.go:12: needs CONFIG_NVME_TCP_TLS",
	"=== NAME  TestTable",
	"    csi_lab_test.go:20: the parent logs after",
	"--- FAIL: TestTable (1.50s)",
	"    --- PASS: TestTable/one (1.50s)",
	"    --- SKIP: TestTable/two (0.00s)",
	"FAIL",
}

func TestResults(t *testing.T) {
	o := NewOutcome(0)
	for _, l := range goTestOutput {
		o.Observe(l, 0)
	}
	want := []TestResult{
		{Name: "TestSmokeRawConnect", Verdict: "PASS", Elapsed: 420 * time.Millisecond},
		{Name: "TestAuthStage", Verdict: "SKIP", Reason: "kernel 6.1.0-41-amd64 lacks CONFIG_NVME_HOST_AUTH (host DH-HMAC-CHAP)"},
		{Name: "TestTable", Verdict: "FAIL", Elapsed: 1500 * time.Millisecond},
		{Name: "TestTable/one", Verdict: "PASS", Elapsed: 1500 * time.Millisecond},
		{Name: "TestTable/two", Verdict: "SKIP", Reason: "needs CONFIG_NVME_TCP_TLS"},
	}
	if !reflect.DeepEqual(o.Results.Tests, want) {
		t.Errorf("Tests = %+v\nwant %+v", o.Results.Tests, want)
	}
	if got := o.Results.Summary("lab-6.1"); got != "lab-6.1: 1 passed, 1 failed, 1 skipped" {
		t.Errorf("Summary = %q", got)
	}
	if got := len(o.Results.Skipped()); got != 2 {
		t.Errorf("Skipped() has %d tests, want 2 (subtests count)", got)
	}
}
