package kerneltest

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestWriteAttr(t *testing.T) {
	type write struct{ attr, value string }
	tests := []struct {
		name    string
		connect string // extra options of the controller's connect
		writes  []write
		wantErr syscall.Errno // of the last write
		want    map[string]string
	}{
		{name: "ctrl_loss_tmo rounds up with the delay in force", writes: []write{{"reconnect_delay", "2"}, {"ctrl_loss_tmo", "5"}},
			want: map[string]string{"reconnect_delay": "2", "ctrl_loss_tmo": "6"}},
		{name: "ctrl_loss_tmo written before the delay keeps the old attempts", writes: []write{{"ctrl_loss_tmo", "5"}, {"reconnect_delay", "2"}},
			// 5 s at the default 10 s is one attempt; at 2 s it reads 2.
			want: map[string]string{"reconnect_delay": "2", "ctrl_loss_tmo": "2"}},
		{name: "reconnect_delay alone changes what ctrl_loss_tmo reads", writes: []write{{"reconnect_delay", "5"}},
			want: map[string]string{"reconnect_delay": "5", "ctrl_loss_tmo": "300"}},
		{name: "negative ctrl_loss_tmo is off", writes: []write{{"ctrl_loss_tmo", "-1"}}, want: map[string]string{"ctrl_loss_tmo": "off"}},
		{name: "ctrl_loss_tmo -7 is off too", writes: []write{{"ctrl_loss_tmo", "-7"}}, want: map[string]string{"ctrl_loss_tmo": "off"}},
		{name: "trailing newline is accepted", writes: []write{{"ctrl_loss_tmo", "30\n"}}, want: map[string]string{"ctrl_loss_tmo": "30"}},
		{name: "sysfs integers are decimal", writes: []write{{"ctrl_loss_tmo", "010"}}, want: map[string]string{"ctrl_loss_tmo": "10"}},
		{name: "fast_io_fail_tmo", writes: []write{{"fast_io_fail_tmo", "4"}}, want: map[string]string{"fast_io_fail_tmo": "4"}},
		{name: "fast_io_fail_tmo negative is off", connect: "fast_io_fail_tmo=3", writes: []write{{"fast_io_fail_tmo", "-1"}},
			want: map[string]string{"fast_io_fail_tmo": "off"}},
		{name: "reconnect_delay 0 is accepted, as the kernel does", writes: []write{{"reconnect_delay", "0"}},
			want: map[string]string{"reconnect_delay": "0", "ctrl_loss_tmo": "0"}},
		{name: "reconnect_delay of 2^32-1 reads off", writes: []write{{"reconnect_delay", "4294967295"}},
			want: map[string]string{"reconnect_delay": "off"}},
		{name: "negative reconnect_delay", writes: []write{{"reconnect_delay", "-1"}}, wantErr: syscall.EINVAL,
			want: map[string]string{"reconnect_delay": "10"}},
		{name: "ctrl_loss_tmo not a number", writes: []write{{"ctrl_loss_tmo", "off"}}, wantErr: syscall.EINVAL,
			want: map[string]string{"ctrl_loss_tmo": "600"}},
		{name: "ctrl_loss_tmo in hex", writes: []write{{"ctrl_loss_tmo", "0x10"}}, wantErr: syscall.EINVAL},
		{name: "read-only attribute", writes: []write{{"kato", "9"}}, wantErr: syscall.EACCES, want: map[string]string{"kato": "5"}},
		{name: "state is read-only", writes: []write{{"state", "live"}}, wantErr: syscall.EACCES},
		{name: "unknown attribute", writes: []write{{"dhchap_secret", "DHHC-1:00:xx"}}, wantErr: syscall.ENOENT},
		{name: "reset of a live controller", writes: []write{{"reset_controller", "1"}}, want: map[string]string{"state": "live"}},
		{name: "rescan", writes: []write{{"rescan_controller", "1"}}, want: map[string]string{"state": "live"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(t)
			extra := []string{}
			if tt.connect != "" {
				extra = append(extra, tt.connect)
			}
			mustConnect(t, h, opts(nqnA, extra...))
			var err error
			for _, w := range tt.writes {
				err = h.WriteAttr(filepath.Join(h.SysfsRoot(), "class/nvme/nvme0", w.attr), w.value)
			}
			if tt.wantErr != 0 {
				var pe *fs.PathError
				if !errnoIs(err, tt.wantErr) || !errors.As(err, &pe) {
					t.Fatalf("error %v, want a PathError with %v", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			for a, v := range tt.want {
				if got := attr(t, h, "class/nvme/nvme0/"+a); got != v {
					t.Errorf("%s = %q, want %q", a, got, v)
				}
			}
		})
	}
}

func TestWriteAttrOfGoneController(t *testing.T) {
	h := newHost(t)
	mustConnect(t, h, opts(nqnA))
	path := filepath.Join(h.SysfsRoot(), "class/nvme/nvme0/delete_controller")
	if err := h.WriteAttr(path, "1"); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"delete_controller", "ctrl_loss_tmo"} {
		err := h.WriteAttr(filepath.Join(h.SysfsRoot(), "class/nvme/nvme0", a), "1")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s of a gone controller: %v, want ErrNotExist", a, err)
		}
	}
	if err := h.WriteAttr("/etc/passwd", "x"); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a write outside the simulated sysfs: %v, want a distinct error", err)
	}
	if h.Disconnects() != 1 {
		t.Errorf("%d disconnects, want 1", h.Disconnects())
	}
}

func TestDeleteOfDeletingControllerSucceedsAndKeepsIt(t *testing.T) {
	h := newHost(t)
	mustConnect(t, h, opts(nqnA))
	if err := h.SetControllerState("nvme0", stateDeletingIO); err != nil {
		t.Fatal(err)
	}
	if err := h.WriteAttr(filepath.Join(h.SysfsRoot(), "class/nvme/nvme0/delete_controller"), "1"); err != nil {
		t.Fatalf("delete of a deleting controller: %v", err)
	}
	if got := names(h); got != "nvme0=deleting (no IO)" || h.Disconnects() != 0 {
		t.Errorf("controllers %q after %d disconnects", got, h.Disconnects())
	}
}

func TestIOPolicy(t *testing.T) {
	h := newHost(t)
	mustConnect(t, h, opts(nqnA))
	path := filepath.Join(h.SysfsRoot(), "class/nvme-subsystem/nvme-subsys0/iopolicy")
	if err := h.WriteAttr(path, "round-robin\n"); err != nil {
		t.Fatal(err)
	}
	if got := attr(t, h, "class/nvme-subsystem/nvme-subsys0/iopolicy"); got != "round-robin" {
		t.Errorf("iopolicy %q", got)
	}
	if err := h.WriteAttr(path, "queue-depth"); !errnoIs(err, syscall.EINVAL) {
		t.Errorf("queue-depth on 6.1: %v, want EINVAL", err)
	}
	if err := h.WriteAttr(filepath.Join(h.SysfsRoot(), "class/nvme-subsystem/nvme-subsys0/subsysnqn"), "x"); !errnoIs(err, syscall.EACCES) {
		t.Errorf("subsysnqn: %v, want EACCES", err)
	}
	if err := h.WriteAttr(filepath.Join(h.SysfsRoot(), "block/nvme0n1/size"), "1"); !errnoIs(err, syscall.EACCES) {
		t.Errorf("disk size: %v, want EACCES", err)
	}
}

func TestRewriteAttr(t *testing.T) {
	h := newHost(t)
	mustConnect(t, h, opts(nqnA))
	h.RewriteAttr("ctrl_loss_tmo", "600")
	dir := filepath.Join(h.SysfsRoot(), "class/nvme/nvme0")
	if err := h.WriteAttr(filepath.Join(dir, "reconnect_delay"), "5"); err != nil {
		t.Fatal(err)
	}
	if err := h.WriteAttr(filepath.Join(dir, "ctrl_loss_tmo"), "-1"); err != nil {
		t.Fatal(err)
	}
	if got := attr(t, h, "class/nvme/nvme0/ctrl_loss_tmo"); got != "600" {
		t.Errorf("ctrl_loss_tmo %q, want the rule's 600", got)
	}
	h.RewriteAttr("ctrl_loss_tmo", "")
	if err := h.WriteAttr(filepath.Join(dir, "ctrl_loss_tmo"), "-1"); err != nil {
		t.Fatal(err)
	}
	if got := attr(t, h, "class/nvme/nvme0/ctrl_loss_tmo"); got != "off" {
		t.Errorf("ctrl_loss_tmo %q without the rule, want off", got)
	}
}

// Linux takes reconnect_delay 0 and then divides by it when ctrl_loss_tmo
// is written: the simulation fails the test there.
func TestCtrlLossTmoAfterZeroDelayIsAnOops(t *testing.T) {
	rec := &recordTB{TB: t}
	h := New(rec)
	h.AddTarget("127.0.0.1", "4420", nqnA, ns1)
	mustConnect(t, h, opts(nqnA))
	dir := filepath.Join(h.SysfsRoot(), "class/nvme/nvme0")
	if err := h.WriteAttr(filepath.Join(dir, "reconnect_delay"), "0"); err != nil {
		t.Fatal(err)
	}
	if errs := rec.errors(); len(errs) != 0 {
		t.Fatalf("writing 0 failed the test: %q", errs)
	}
	if err := h.WriteAttr(filepath.Join(dir, "ctrl_loss_tmo"), "30"); !errnoIs(err, syscall.EIO) {
		t.Errorf("ctrl_loss_tmo after delay 0: %v, want EIO", err)
	}
	if errs := rec.errors(); len(errs) != 1 || !strings.Contains(errs[0], "oopses") {
		t.Errorf("reported %q, want one oops", errs)
	}
	if err := h.WriteAttr(filepath.Join(dir, "ctrl_loss_tmo"), "-1"); err != nil {
		t.Errorf("ctrl_loss_tmo -1 needs no division: %v", err)
	}
}
