package vm

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nvmeof/nvmeof/test/lab/internal/console"
)

// fakeQEMU stands in for qemu-system-x86_64: it ignores its arguments and
// plays the console of one kind of run, chosen by FAKE_QEMU.
const fakeQEMU = `#!/bin/sh
case "$FAKE_QEMU" in
pass)   echo "=== RUN   TestA"; echo "LAB-TIME: step=init uptime=1.50"; echo "LAB-RESULT: exit=0" ;;
fail)   echo "--- FAIL: TestA"; echo "LAB-RESULT: exit=1" ;;
panic)  echo "[    1.000000] Kernel panic - not syncing: Attempted to kill init!" ;;
silent) ;;
crash)  echo "qemu: could not load kernel" >&2; exit 1 ;;
hang)   echo "=== RUN   TestHang"; exec sleep 60 ;;
esac
`

func TestRun(t *testing.T) {
	qemu := filepath.Join(t.TempDir(), "qemu")
	if err := os.WriteFile(qemu, []byte(fakeQEMU), 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		kind       string
		wantRunErr bool
		want       []error // what Outcome.Err must match; none for a pass
	}{
		{kind: "pass"},
		{kind: "fail", want: []error{console.ErrTestsFailed}},
		{kind: "panic", want: []error{console.ErrKernelFault, console.ErrNoResult}},
		{kind: "silent", want: []error{console.ErrNoResult}},
		{kind: "hang", want: []error{console.ErrTimeout}},
		{kind: "crash", wantRunErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			t.Setenv("FAKE_QEMU", tt.kind)
			cfg := validConfig()
			cfg.QEMU, cfg.Timeout = qemu, time.Second
			var out bytes.Buffer
			outcome, err := Run(t.Context(), cfg, &out)
			if tt.wantRunErr {
				if err == nil {
					t.Fatal("Run() succeeded, want the QEMU failure")
				}
				return
			}
			if err != nil {
				t.Fatalf("Run() = %v", err)
			}
			got := outcome.Err()
			if len(tt.want) == 0 && got != nil {
				t.Fatalf("Outcome.Err() = %v, want nil", got)
			}
			for _, w := range tt.want {
				if !errors.Is(got, w) {
					t.Errorf("Outcome.Err() = %v, want it to match %v", got, w)
				}
			}
			if tt.kind == "pass" {
				if !strings.Contains(out.String(), "=== RUN   TestA\n") {
					t.Errorf("console copy = %q, want the test output", out.String())
				}
				if len(outcome.Marks) != 1 || outcome.Marks[0].Step != "init" {
					t.Errorf("Marks = %+v, want the init mark", outcome.Marks)
				}
			}
		})
	}
}
