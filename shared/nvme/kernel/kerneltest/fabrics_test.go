package kerneltest

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestFabricsDevice(t *testing.T) {
	t.Run("read before any write lists the options", func(t *testing.T) {
		h := newHost(t)
		f, err := h.OpenFabrics(h.FabricsPath())
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = f.Close() }()
		buf := make([]byte, 10)
		var got []byte
		for {
			n, err := f.Read(buf) // small reads continue where the last stopped
			got = append(got, buf[:n]...)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if string(got) != OptionList() {
			t.Errorf("read %q, want the option list", got)
		}
	})
	t.Run("reply from the descriptor that wrote", func(t *testing.T) {
		h := newHost(t)
		if reply := mustConnect(t, h, opts(nqnA)); reply != "instance=0,cntlid=1\n" {
			t.Errorf("reply %q", reply)
		}
		if reply := mustConnect(t, h, opts(nqnB)); reply != "instance=1,cntlid=1\n" {
			t.Errorf("second reply %q: cntlids are per subsystem", reply)
		}
	})
	t.Run("a second write on one descriptor is EINVAL", func(t *testing.T) {
		h := newHost(t)
		f, err := h.OpenFabrics(h.FabricsPath())
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = f.Close() }()
		if _, err := f.Write([]byte(opts(nqnA))); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte(opts(nqnB))); !errnoIs(err, syscall.EINVAL) {
			t.Errorf("second write: %v, want EINVAL", err)
		}
		if got := names(h); got != "nvme0=live" {
			t.Errorf("controllers %q", got)
		}
	})
	t.Run("a failed write leaves the descriptor usable, as in the kernel", func(t *testing.T) {
		h := newHost(t)
		f, err := h.OpenFabrics(h.FabricsPath())
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = f.Close() }()
		if _, err := f.Write([]byte(opts(nqnA, "bogus"))); !errnoIs(err, syscall.EINVAL) {
			t.Fatalf("bad write: %v", err)
		}
		if _, err := f.Write([]byte(opts(nqnA))); err != nil {
			t.Errorf("write after a failed one: %v", err)
		}
	})
	t.Run("more than a page is ENOMEM", func(t *testing.T) {
		h := newHost(t)
		if _, err := write(h, opts(nqnA)+",hostnqn="+strings.Repeat("x", 4096)); !errnoIs(err, syscall.ENOMEM) {
			t.Errorf("error %v, want ENOMEM", err)
		}
	})
	t.Run("errors are path errors", func(t *testing.T) {
		h := newHost(t)
		_, err := write(h, "bogus")
		var pe *fs.PathError
		if !errors.As(err, &pe) || pe.Op != "write" || pe.Path != h.FabricsPath() {
			t.Errorf("error %#v, want a write PathError on %s", err, h.FabricsPath())
		}
	})
	t.Run("no module, no device", func(t *testing.T) {
		h := New(t, WithoutFabrics())
		if _, err := h.OpenFabrics(h.FabricsPath()); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("open: %v, want ErrNotExist", err)
		}
		if _, err := os.Lstat(h.FabricsPath()); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists without the module", h.FabricsPath())
		}
	})
	t.Run("the device passes for a character device", func(t *testing.T) {
		h := New(t)
		st, err := os.Stat(h.FabricsPath())
		if err != nil || st.Mode()&fs.ModeCharDevice == 0 {
			t.Errorf("stat %s: %v, %v", h.FabricsPath(), st, err)
		}
	})
}

func TestConnectOutcomes(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, h *Host)
		options string
		want    syscall.Errno // 0: success
		strict  bool          // WithStrictHostIdentity
	}{
		{name: "connects", options: opts(nqnA)},
		{name: "nothing listens on the port", options: strings.Replace(opts(nqnA), "4420", "4430", 1), want: syscall.ECONNREFUSED},
		{name: "nothing listens on the address", options: strings.Replace(opts(nqnA), "127.0.0.1", "192.0.2.1", 1), want: syscall.ECONNREFUSED},
		{name: "no trsvcid is port 8009", options: strings.Replace(opts(nqnA), ",trsvcid=4420", "", 1), want: syscall.ECONNREFUSED},
		{name: "trsvcid in hex", options: strings.Replace(opts(nqnA), "4420", "0x1144", 1)},
		{name: "trsvcid 04420 is octal", options: strings.Replace(opts(nqnA), "4420", "04420", 1), want: syscall.ECONNREFUSED},
		{name: "target down", setup: func(_ *testing.T, h *Host) { h.SetDown(nqnA, true) }, options: opts(nqnA), want: syscall.ECONNREFUSED},
		{name: "port down", setup: func(_ *testing.T, h *Host) { h.SetPortDown("127.0.0.1", "4420", true) }, options: opts(nqnA), want: syscall.ECONNREFUSED},
		{name: "subsystem not on that port", options: opts("nqn.2026-01.io.nvmeof.test:none"), want: syscall.EIO},
		{name: "subsystem on another port only", setup: func(_ *testing.T, h *Host) {
			h.AddTarget("127.0.0.1", "4421", "nqn.2026-01.io.nvmeof.test:c", ns1)
		}, options: opts("nqn.2026-01.io.nvmeof.test:c"), want: syscall.EIO},
		{name: "host not allowed", setup: func(_ *testing.T, h *Host) { h.SetAllowedHosts(nqnA, []string{hostB}) }, options: opts(nqnA), want: syscall.EIO},
		{name: "host allowed", setup: func(_ *testing.T, h *Host) { h.SetAllowedHosts(nqnA, []string{hostA}) }, options: opts(nqnA)},
		{name: "nobody allowed", setup: func(_ *testing.T, h *Host) { h.SetAllowedHosts(nqnA, []string{}) }, options: opts(nqnA), want: syscall.EIO},
		{name: "6.1: host NQN known with another ID connects", setup: func(t *testing.T, h *Host) {
			mustConnect(t, h, strings.Replace(opts(nqnB), hostAID, hostBID, 1))
		}, options: opts(nqnA)},
		{name: "6.1: host ID known with another NQN connects", setup: func(t *testing.T, h *Host) {
			mustConnect(t, h, strings.Replace(opts(nqnB), hostA, hostB, 1))
		}, options: opts(nqnA)},
		{name: "6.1: a host NQN without a host ID connects", options: strings.Replace(opts(nqnA), ",hostid="+hostAID, "", 1)},
		{name: "6.1: hostnqn twice", options: opts(nqnA, "hostnqn="+hostA), want: syscall.EADDRINUSE},
		{name: "strict: host NQN known with another ID", strict: true, setup: func(t *testing.T, h *Host) {
			mustConnect(t, h, strings.Replace(opts(nqnB), hostAID, hostBID, 1))
		}, options: opts(nqnA), want: syscall.EINVAL},
		{name: "strict: host ID known with another NQN", strict: true, setup: func(t *testing.T, h *Host) {
			mustConnect(t, h, strings.Replace(opts(nqnB), hostA, hostB, 1))
		}, options: opts(nqnA), want: syscall.EINVAL},
		{name: "strict: host NQN free again once its controller is gone", strict: true, setup: func(t *testing.T, h *Host) {
			mustConnect(t, h, strings.Replace(opts(nqnB), hostAID, hostBID, 1))
			if err := h.RemoveController("nvme0"); err != nil {
				t.Fatal(err)
			}
		}, options: opts(nqnA)},
		{name: "strict: a host NQN without a host ID takes the default host's ID", strict: true,
			options: strings.Replace(opts(nqnA), ",hostid="+hostAID, "", 1), want: syscall.EINVAL},
		{name: "strict: hostnqn twice", strict: true, options: opts(nqnA, "hostnqn="+hostA)},
		{name: "no identity at all is the default host", options: "nqn=" + nqnA + ",transport=tcp,traddr=127.0.0.1,trsvcid=4420"},
		{name: "unknown host_iface", options: opts(nqnA, "host_iface=eth7"), want: syscall.ENODEV},
		{name: "known host_iface", options: opts(nqnA, "host_iface=lo")},
		{name: "host_traddr not local", options: opts(nqnA, "host_traddr=192.0.2.9"), want: syscall.EADDRNOTAVAIL},
		{name: "host_traddr in the loopback network", options: opts(nqnA, "host_traddr=127.0.0.2")},
		{name: "host_traddr not an address", options: opts(nqnA, "host_traddr=localhost"), want: syscall.EINVAL},
		{name: "traddr a host name", options: strings.Replace(opts(nqnA), "127.0.0.1", "localhost", 1), want: syscall.EINVAL},
		{name: "traddr IPv4 with leading zeros", options: strings.Replace(opts(nqnA), "127.0.0.1", "127.000.0.01", 1)},
		{name: "traddr v4-mapped reaches the IPv4 listener", options: strings.Replace(opts(nqnA), "127.0.0.1", "::ffff:127.0.0.1", 1)},
		{name: "injected failure", setup: func(_ *testing.T, h *Host) { h.FailNextConnect(syscall.ETIMEDOUT) }, options: opts(nqnA), want: syscall.ETIMEDOUT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o []Option
			if tt.strict {
				o = append(o, WithStrictHostIdentity())
			}
			h := newHost(t, o...)
			if tt.setup != nil {
				tt.setup(t, h)
			}
			before := len(h.Controllers())
			_, err := write(h, tt.options)
			if tt.want == 0 {
				if err != nil {
					t.Fatalf("connect: %v (dmesg %q)", err, h.Dmesg())
				}
				if len(h.Controllers()) != before+1 {
					t.Errorf("controllers %q, want one more than %d", names(h), before)
				}
			} else {
				if !errnoIs(err, tt.want) {
					t.Fatalf("connect: %v, want %v (dmesg %q)", err, tt.want, h.Dmesg())
				}
				if len(h.Controllers()) != before {
					t.Errorf("a refused connect left controllers: %q", names(h))
				}
			}
			checkTree(t, h)
		})
	}
}

func TestDuplicateRule(t *testing.T) {
	tests := []struct {
		name             string
		first, second    string
		wantEALREADY     bool
		prepareFirstCtrl func(t *testing.T, h *Host)
	}{
		{name: "same everything", first: opts(nqnA), second: opts(nqnA), wantEALREADY: true},
		{name: "options in another order and other tunables", first: opts(nqnA, "ctrl_loss_tmo=5"),
			second:       "hostid=" + hostAID + ",hostnqn=" + hostA + ",trsvcid=4420,traddr=127.0.0.1,transport=tcp,nqn=" + nqnA + ",reconnect_delay=2",
			wantEALREADY: true},
		{name: "duplicate_connect", first: opts(nqnA), second: opts(nqnA, "duplicate_connect")},
		{name: "another subsystem", first: opts(nqnA), second: opts(nqnB)},
		{name: "same host_traddr", first: opts(nqnA, "host_traddr=127.0.0.1"), second: opts(nqnA, "host_traddr=127.0.0.1"), wantEALREADY: true},
		{name: "other host_traddr", first: opts(nqnA, "host_traddr=127.0.0.1"), second: opts(nqnA, "host_traddr=127.0.0.2")},
		{name: "host_traddr on one side only", first: opts(nqnA, "host_traddr=127.0.0.1"), second: opts(nqnA)},
		{name: "host_iface on one side only", first: opts(nqnA), second: opts(nqnA, "host_iface=lo")},
		{name: "traddr compared as text", first: opts(nqnA), second: strings.Replace(opts(nqnA), "127.0.0.1", "127.0.0.01", 1)},
		{name: "the first is deleting", first: opts(nqnA), second: opts(nqnA),
			prepareFirstCtrl: func(t *testing.T, h *Host) {
				if err := h.SetControllerState("nvme0", stateDeletingIO); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "the first is dead", first: opts(nqnA), second: opts(nqnA),
			prepareFirstCtrl: func(t *testing.T, h *Host) {
				if err := h.SetControllerState("nvme0", stateDead); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "the first is reconnecting", first: opts(nqnA), second: opts(nqnA), wantEALREADY: true,
			prepareFirstCtrl: func(_ *testing.T, h *Host) { h.SetDown(nqnA, true) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(t)
			mustConnect(t, h, tt.first)
			if tt.prepareFirstCtrl != nil {
				tt.prepareFirstCtrl(t, h)
			}
			_, err := write(h, tt.second)
			if tt.wantEALREADY {
				if !errnoIs(err, syscall.EALREADY) {
					t.Fatalf("second connect: %v, want EALREADY", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("second connect: %v, want a new controller (dmesg %q)", err, h.Dmesg())
			}
			if len(h.Controllers()) != 2 {
				t.Errorf("controllers %q", names(h))
			}
		})
	}
}

func TestControllerAttributes(t *testing.T) {
	h := newHost(t)
	mustConnect(t, h, opts(nqnA, "ctrl_loss_tmo=5", "reconnect_delay=2", "fast_io_fail_tmo=4", "nr_io_queues=1", "queue_size=64", "keep_alive_tmo=7", "host_traddr=127.0.0.1"))
	mustConnect(t, h, opts(nqnB))
	want := map[string]string{
		"state": "live", "subsysnqn": nqnA, "transport": "tcp", "hostnqn": hostA, "hostid": hostAID, "cntlid": "1",
		"address":       "traddr=127.0.0.1,trsvcid=4420,host_traddr=127.0.0.1,src_addr=127.0.0.1",
		"ctrl_loss_tmo": "6", "reconnect_delay": "2", "fast_io_fail_tmo": "4", "kato": "7", "queue_count": "2", "sqsize": "63",
		"cntrltype": "io",
	}
	for a, v := range want {
		if got := attr(t, h, "class/nvme/nvme0/"+a); got != v {
			t.Errorf("nvme0/%s = %q, want %q", a, got, v)
		}
	}
	defaults := map[string]string{"ctrl_loss_tmo": "600", "reconnect_delay": "10", "fast_io_fail_tmo": "off", "kato": "5",
		"address": "traddr=127.0.0.1,trsvcid=4420,src_addr=127.0.0.1"}
	for a, v := range defaults {
		if got := attr(t, h, "class/nvme/nvme1/"+a); got != v {
			t.Errorf("nvme1/%s = %q, want the kernel's default %q", a, got, v)
		}
	}
	for _, wo := range []string{"delete_controller", "reset_controller", "rescan_controller"} {
		fi, err := os.Stat(filepath.Join(h.SysfsRoot(), "class/nvme/nvme0", wo))
		if err != nil || fi.Mode().Perm()&0o444 != 0 {
			t.Errorf("%s: %v, mode %v: want a write-only attribute", wo, err, fi)
		}
	}
	h.SetDown(nqnA, true)
	if got := attr(t, h, "class/nvme/nvme0/address"); got != "traddr=127.0.0.1,trsvcid=4420,host_traddr=127.0.0.1" {
		t.Errorf("address while connecting = %q: src_addr shows only while live", got)
	}
}

func TestNamingAndNumbers(t *testing.T) {
	h := newHost(t)
	h.AddTarget("127.0.0.1", "4421", nqnA)
	mustConnect(t, h, opts(nqnA))                                     // nvme0, subsystem 0
	mustConnect(t, h, opts(nqnB))                                     // nvme1, subsystem 1
	mustConnect(t, h, strings.Replace(opts(nqnA), "4420", "4421", 1)) // nvme2, joins subsystem 0
	if got := diskNames(h); got != "nvme0c0n1 nvme0c0n2 nvme0c2n1 nvme0c2n2 nvme0n1 nvme0n2 nvme1c1n1 nvme1n1" {
		t.Errorf("disks %s", got)
	}
	if got := attr(t, h, "class/nvme/nvme2/cntlid"); got != "2" {
		t.Errorf("nvme2 cntlid %s, want 2 (the target's second controller)", got)
	}
	if !exists(h, "class/nvme-subsystem/nvme-subsys0/nvme2") || exists(h, "class/nvme-subsystem/nvme-subsys2") {
		t.Error("nvme2 did not join nvme-subsys0")
	}
	// nvme0 goes: its number stays with the subsystem that took it, so
	// the next controller is nvme3, not nvme0.
	if err := h.RemoveController("nvme0"); err != nil {
		t.Fatal(err)
	}
	if reply := mustConnect(t, h, opts(nqnA, "duplicate_connect")); reply != "instance=3,cntlid=1\n" {
		t.Errorf("reply %q, want nvme3 and the freed cntlid 1", reply)
	}
	// The heads stayed: nvme2 still reaches them.
	if !devExists(h, "nvme0n1") || !devExists(h, "nvme0n2") {
		t.Error("head disks went with a controller that was not their last path")
	}
	// Subsystem B goes with its only controller, and its number is free.
	if err := h.RemoveController("nvme1"); err != nil {
		t.Fatal(err)
	}
	if exists(h, "class/nvme-subsystem/nvme-subsys1") || devExists(h, "nvme1n1") {
		t.Error("subsystem 1 or its disk outlived its last controller")
	}
	if reply := mustConnect(t, h, opts(nqnB)); reply != "instance=1,cntlid=1\n" {
		t.Errorf("reply %q, want nvme1 reused", reply)
	}
	checkTree(t, h)
}

func TestHeadDiskGoesWithItsLastPath(t *testing.T) {
	h := newHost(t)
	h.AddTarget("127.0.0.1", "4421", nqnA)
	mustConnect(t, h, opts(nqnA))
	mustConnect(t, h, strings.Replace(opts(nqnA), "4420", "4421", 1))
	dev := attr(t, h, "block/nvme0n1/dev")
	if err := h.WriteAttr(filepath.Join(h.SysfsRoot(), "class/nvme/nvme0/delete_controller"), "1"); err != nil {
		t.Fatal(err)
	}
	if !devExists(h, "nvme0n1") || attr(t, h, "block/nvme0n1/dev") != dev || exists(h, "block/nvme0c0n1") {
		t.Fatalf("after the first path: disks %s", diskNames(h))
	}
	if err := h.WriteAttr(filepath.Join(h.SysfsRoot(), "class/nvme/nvme1/delete_controller"), "1"); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"block/nvme0n1", "block/nvme0c1n1", "dev/block/" + dev, "class/nvme-subsystem/nvme-subsys0", "class/nvme/nvme1"} {
		if exists(h, gone) {
			t.Errorf("%s outlived the last path", gone)
		}
	}
	if devExists(h, "nvme0n1") {
		t.Error("/dev/nvme0n1 outlived the last path")
	}
	if h.Disconnects() != 2 {
		t.Errorf("%d disconnects, want 2", h.Disconnects())
	}
	checkTree(t, h)
}

func TestWithoutMultipath(t *testing.T) {
	h := newHost(t, WithoutMultipath())
	h.AddTarget("127.0.0.1", "4421", nqnA)
	mustConnect(t, h, opts(nqnA))
	mustConnect(t, h, strings.Replace(opts(nqnA), "4420", "4421", 1))
	if got := diskNames(h); got != "nvme0n1 nvme0n2 nvme1n1 nvme1n2" {
		t.Errorf("disks %s", got)
	}
	if got := attr(t, h, "module/nvme_core/parameters/multipath"); got != "N" {
		t.Errorf("multipath parameter %q", got)
	}
	// Both controllers' disks share the namespace's data.
	writeDevice(t, h, "nvme0n1", "through nvme0")
	if b, err := os.ReadFile(filepath.Join(h.DevRoot(), "nvme1n1")); err != nil || !strings.HasPrefix(string(b), "through nvme0") {
		t.Errorf("nvme1n1 reads %.20q, %v", b, err)
	}
	if err := h.RemoveController("nvme0"); err != nil {
		t.Fatal(err)
	}
	if devExists(h, "nvme0n1") || !devExists(h, "nvme1n1") {
		t.Error("a plain disk's node must go with its controller, and only with it")
	}
	checkTree(t, h)
}

func TestDataSurvivesReconnect(t *testing.T) {
	h := newHost(t)
	mustConnect(t, h, opts(nqnA))
	writeDevice(t, h, "nvme0n2", "hello")
	if err := h.RemoveController("nvme0"); err != nil {
		t.Fatal(err)
	}
	mustConnect(t, h, opts(nqnA))
	b, err := os.ReadFile(filepath.Join(h.DevRoot(), "nvme0n2"))
	if err != nil || !strings.HasPrefix(string(b), "hello") || int64(len(b)) != ns2.SizeBytes {
		t.Errorf("after reconnect nvme0n2 reads %.10q (%d bytes), %v", b, len(b), err)
	}
}

// writeDevice writes data at the start of a /dev node, as to a block
// device: in place, never truncating (os.WriteFile would shrink the
// namespace).
func writeDevice(t *testing.T, h *Host, name, data string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(h.DevRoot(), name), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(data), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// On 6.1 a connect's host ID overwrites the ID of every controller of the
// same host NQN, even when the connect itself fails; the duplicate rule
// then no longer tells the IDs apart.
func TestHostIDOverwrite61(t *testing.T) {
	h := newHost(t)
	mustConnect(t, h, opts(nqnA))
	h.SetDown(nqnB, true)
	if _, err := write(h, strings.Replace(opts(nqnB), hostAID, hostBID, 1)); !errnoIs(err, syscall.ECONNREFUSED) {
		t.Fatalf("connect to a target that is down: %v", err)
	}
	if got := attr(t, h, "class/nvme/nvme0/hostid"); got != hostBID {
		t.Errorf("nvme0 hostid %s after a failed connect with %s: want it overwritten", got, hostBID)
	}
	if _, err := write(h, opts(nqnA)); !errnoIs(err, syscall.EALREADY) {
		t.Errorf("connect with the first ID again: %v, want EALREADY", err)
	}
	if got := attr(t, h, "class/nvme/nvme0/hostid"); got != hostAID {
		t.Errorf("nvme0 hostid %s, want %s back", got, hostAID)
	}
	mustConnect(t, h, strings.Replace(opts(nqnA), ",hostid="+hostAID, "", 1)+",duplicate_connect")
	if a, b := attr(t, h, "class/nvme/nvme0/hostid"), attr(t, h, "class/nvme/nvme1/hostid"); a != b || a == hostAID || !isUUID(a) {
		t.Errorf("hostids %s and %s after a connect without one: want one new random ID on both", a, b)
	}
}
