package kerneltest

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
)

// cliArgs is `nvme connect` to nqn as host A, as the connector renders it.
func cliArgs(nqn string, extra ...string) []string {
	return append([]string{"connect", "-n", nqn, "-t", "tcp", "-a", "127.0.0.1", "-s", "4420", "-q", hostA, "-I", hostAID,
		"-c", "5", "-l", "-1"}, extra...)
}

func TestNVMeCLIConnect(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(t *testing.T, h *Host)
		args       []string
		wantCode   int // 0 success
		wantStderr string
		wantWrite  string // the option string that reached the kernel
	}{
		{name: "connects", args: cliArgs(nqnA),
			wantWrite: "nqn=" + nqnA + ",transport=tcp,traddr=127.0.0.1,trsvcid=4420,hostnqn=" + hostA + ",hostid=" + hostAID + ",reconnect_delay=5,ctrl_loss_tmo=-1"},
		{name: "long options and zero integers left out", args: []string{"connect", "--nqn=" + nqnA, "--transport", "tcp", "--traddr=127.0.0.1",
			"--hostnqn=" + hostA, "--hostid=" + hostAID, "--ctrl-loss-tmo=0", "--keep-alive-tmo", "0", "--tos=0", "-g"},
			wantWrite: "nqn=" + nqnA + ",transport=tcp,traddr=127.0.0.1,trsvcid=4420,hostnqn=" + hostA + ",hostid=" + hostAID + ",tos=0,hdr_digest"},
		{name: "integers in base 0", args: cliArgs(nqnA, "-Q", "0x40"),
			wantWrite: "nqn=" + nqnA + ",transport=tcp,traddr=127.0.0.1,trsvcid=4420,hostnqn=" + hostA + ",hostid=" + hostAID + ",queue_size=64,reconnect_delay=5,ctrl_loss_tmo=-1"},
		{name: "already connected, whatever its state", wantCode: 1, wantStderr: "already connected\n", args: cliArgs(nqnA),
			setup: func(t *testing.T, h *Host) {
				mustConnect(t, h, opts(nqnA))
				if err := h.SetControllerState("nvme0", stateDeletingIO); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "refused", args: cliArgs(nqnA), wantCode: 1, setup: func(_ *testing.T, h *Host) { h.SetDown(nqnA, true) },
			wantStderr: "Failed to write to /dev/nvme-fabrics: Connection refused\ncould not add new controller: connection refused\n"},
		{name: "invalid", args: cliArgs(nqnA, "-Q", "8"), wantCode: 1,
			wantStderr: "Failed to write to /dev/nvme-fabrics: Invalid argument\ncould not add new controller: invalid arguments/configuration\n"},
		{name: "missing nqn", args: []string{"connect", "-t", "tcp", "-a", "127.0.0.1"}, wantCode: 1,
			wantStderr: "required argument [--nqn | -n] not specified\n"},
		{name: "unknown flag", args: cliArgs(nqnA, "--frobnicate"), wantCode: 1, wantStderr: "connect: unrecognized option '--frobnicate'\n"},
		{name: "not an integer", args: cliArgs(nqnA, "-k", "five"), wantCode: 1, wantStderr: "connect: Expected integer argument for 'keep-alive-tmo' but got 'five'!\n"},
		{name: "unknown command", args: []string{"frob"}, wantCode: 1, wantStderr: "unknown command \"frob\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(t)
			if tt.setup != nil {
				tt.setup(t, h)
			}
			before := len(h.Writes())
			_, stderr, err := h.NVMeCLI().Run(t.Context(), "/usr/sbin/nvme", tt.args)
			if string(stderr) != tt.wantStderr {
				t.Errorf("stderr %q, want %q", stderr, tt.wantStderr)
			}
			var exit *ExitError
			switch {
			case tt.wantCode == 0 && err != nil:
				t.Fatalf("run: %v (%s)", err, stderr)
			case tt.wantCode != 0 && (!errors.As(err, &exit) || exit.ExitCode() != tt.wantCode):
				t.Fatalf("run: %v, want exit status %d", err, tt.wantCode)
			}
			if tt.wantWrite != "" {
				w := h.Writes()
				if len(w) != before+1 || w[before] != tt.wantWrite {
					t.Errorf("writes %q, want %q", w[before:], tt.wantWrite)
				}
			}
			if got := h.NVMeCLI().Calls(); len(got) != 1 || got[0][0] != "/usr/sbin/nvme" {
				t.Errorf("calls %q", got)
			}
		})
	}
}

// A context that ends while the kernel connects kills nvme-cli only after
// the write: the run fails, the controller exists.
func TestNVMeCLIKilledDuringConnect(t *testing.T) {
	h := newHost(t)
	entered, release := h.HoldConnects(nqnA)
	ctx, cancel := context.WithCancel(t.Context())
	type result struct {
		err error
	}
	done := make(chan result, 1)
	go func() {
		_, _, err := h.NVMeCLI().Run(ctx, "nvme", cliArgs(nqnA))
		done <- result{err}
	}()
	<-entered
	cancel()
	release()
	r := <-done
	var exit *ExitError
	if !errors.As(r.err, &exit) || exit.ExitCode() != -1 || r.err.Error() != "signal: killed" {
		t.Fatalf("run: %v, want killed", r.err)
	}
	if got := names(h); got != "nvme0=live" {
		t.Errorf("controllers %q, want the one the kernel finished", got)
	}
	if _, _, err := h.NVMeCLI().Run(ctx, "nvme", cliArgs(nqnA)); !errors.Is(err, context.Canceled) {
		t.Errorf("run with a dead context: %v", err)
	}
}

func TestNVMeCLIDisconnect(t *testing.T) {
	h := newHost(t)
	mustConnect(t, h, opts(nqnA))
	mustConnect(t, h, opts(nqnA, "duplicate_connect"))
	mustConnect(t, h, opts(nqnB))
	stdout, _, err := h.NVMeCLI().Run(t.Context(), "nvme", []string{"disconnect", "-n", nqnA})
	if err != nil || string(stdout) != "NQN:"+nqnA+" disconnected 2 controller(s)\n" {
		t.Errorf("disconnect -n: %q, %v", stdout, err)
	}
	if _, _, err := h.NVMeCLI().Run(t.Context(), "nvme", []string{"disconnect", "-d", "nvme2"}); err != nil {
		t.Errorf("disconnect -d: %v", err)
	}
	if _, stderr, err := h.NVMeCLI().Run(t.Context(), "nvme", []string{"disconnect", "-d", "nvme2"}); err == nil || !strings.Contains(string(stderr), "Did not find device nvme2") {
		t.Errorf("disconnect of a gone device: %q, %v", stderr, err)
	}
	if got := names(h); got != "" || h.Disconnects() != 3 {
		t.Errorf("controllers %q after %d disconnects", got, h.Disconnects())
	}
}

func TestLibnvmeMessage(t *testing.T) {
	for errno, want := range map[syscall.Errno]string{
		syscall.EALREADY: "already connected", syscall.EIO: "failed to write to nvme-fabrics device",
		syscall.ENODEV: "invalid interface",
	} {
		if got := libnvmeMessage(errno); got != want {
			t.Errorf("libnvmeMessage(%v) = %q, want %q", errno, got, want)
		}
	}
}
