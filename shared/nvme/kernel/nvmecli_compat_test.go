package kernel

import (
	"slices"
	"testing"
)

// bookworm's nvme-cli 2.3 has no -F and refuses the whole command; trixie's
// 2.13 drops -F 0 (both measured in the lab). The backend never passes
// fast_io_fail_tmo, and the connector writes it through sysfs.
func TestNVMeCLIBackendSetsFastIOFailThroughSysfs(t *testing.T) {
	for _, tmo := range []int{0, 4, -1} {
		fx := newSysfsFixture(t)
		cli := &fakeNVMeCLI{act: func(int) (string, error) {
			fx.addSubsystem(0, nqnOne)
			fx.addController(fixtureCtrl{Instance: 3, NQN: nqnOne})
			return "", nil
		}}
		c, err := NewConnector(ConnectorConfig{SysfsRoot: fx.root, DevRoot: fx.dev, Backend: BackendNVMeCLI,
			NVMeCLIPath: "/usr/sbin/nvme", Exec: cli, Backoff: fastBackoff})
		if err != nil {
			t.Fatal(err)
		}
		conn := connectionTo(nqnOne)
		conn.Config.FastIOFailTmo = &tmo
		ctrl, err := c.Connect(t.Context(), valid(t, conn))
		if err != nil {
			t.Fatalf("fast_io_fail_tmo %d: %v", tmo, err)
		}
		if slices.Contains(cli.calls[0], "-F") {
			t.Errorf("fast_io_fail_tmo %d: nvme-cli was given -F: %q", tmo, cli.calls[0])
		}
		if ctrl.FastIOFailTmo != tmo {
			t.Errorf("fast_io_fail_tmo %d: the controller holds %d", tmo, ctrl.FastIOFailTmo)
		}
	}
}

// ctrl_loss_tmo 0 reaches the controller through sysfs: the model refuses
// it in nvme-cli arguments meant for a person's own nvme-cli.
func TestNVMeCLIBackendCtrlLossTmoZero(t *testing.T) {
	fx := newSysfsFixture(t)
	cli := &fakeNVMeCLI{act: func(int) (string, error) {
		fx.addSubsystem(0, nqnOne)
		fx.addController(fixtureCtrl{Instance: 3, NQN: nqnOne})
		return "", nil
	}}
	c, err := NewConnector(ConnectorConfig{SysfsRoot: fx.root, DevRoot: fx.dev, Backend: BackendNVMeCLI,
		NVMeCLIPath: "/usr/sbin/nvme", Exec: cli, Backoff: fastBackoff})
	if err != nil {
		t.Fatal(err)
	}
	conn := connectionTo(nqnOne)
	conn.Config.CtrlLossTmo = 0
	ctrl, err := c.Connect(t.Context(), valid(t, conn))
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.Index(cli.calls[0], "-l"); i < 0 || cli.calls[0][i+1] != "-1" {
		t.Errorf("nvme-cli ran with %q, want -l -1", cli.calls[0])
	}
	if ctrl.CtrlLossTmo != 0 || fx.ctrlAttr(3, "ctrl_loss_tmo") != "0" {
		t.Errorf("ctrl_loss_tmo %d (sysfs %s), want 0", ctrl.CtrlLossTmo, fx.ctrlAttr(3, "ctrl_loss_tmo"))
	}
}
