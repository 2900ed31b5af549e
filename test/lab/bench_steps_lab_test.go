//go:build lab

package lab

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/hashicorp/go-hclog"
	mount "k8s.io/mount-utils"

	"github.com/nvmeof/nvmeof/csi/driver"
	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel/uevent"
	"github.com/nvmeof/nvmeof/test/lab/labtarget"
)

// TestAttachStepCosts times, in the lab VM, the building blocks the
// plugin's steps are made of, with a controller connected and its
// namespace there: a system call, reading the mount table, the sysfs
// looks of the connector, a state record, a log line, reads of the
// device. They explain the phases TestAttachDetachBench reports (LAB-STEP
// lines, medians); nothing is asserted.
func TestAttachStepCosts(t *testing.T) {
	const n = 30
	c, _ := newLabConnector(t)
	conn := valid(t, labConnection(labtarget.SubsystemTwo))
	ctrl := connectForTest(t, c, labConnection(labtarget.SubsystemTwo))
	ns := resolveForTest(t, c, ctrl, nvme.NamespaceSelector{NSID: 1})
	noEvents, err := kernel.NewConnector(kernel.ConnectorConfig{
		DiskEvents: func() (kernel.DiskEvents, error) { return nil, errors.New("no events in this measure") },
	})
	if err != nil {
		t.Fatal(err)
	}
	// A plugin that only answers Probe: the other process a call goes to.
	socket, state := pluginDirs(t)
	other := startPluginWith(t, socket, state, pluginOptions{logLevel: "info"})
	stateDir := t.TempDir()
	subs, err := filepath.Glob("/sys/class/nvme-subsystem/*/" + ctrl.Name)
	if err != nil || len(subs) != 1 {
		t.Fatalf("subsystem of %s: %v %v", ctrl.Name, subs, err)
	}
	subDir := filepath.Dir(subs[0])
	record := map[string]any{"VolumeID": "v", "StagingPath": "/x/y", "Target": map[string]string{"NQN": labtarget.SubsystemTwo}}
	logOut, logIn, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, logOut) }()
	t.Cleanup(func() { _ = logIn.Close() })
	logger := hclog.New(&hclog.LoggerOptions{Name: "lab", Level: hclog.Debug, JSONFormat: true, Output: logIn})
	buf := make([]byte, 1<<20)

	steps := []struct {
		name string
		fn   func() error
		prep func() // untimed
	}{
		{"getpid (one system call)", func() error { syscall.Getpid(); return nil }, nil},
		{"read /proc/self/mountinfo", func() error { _, err := os.ReadFile("/proc/self/mountinfo"); return err }, nil},
		{"mount-utils ParseMountInfo", func() error { _, err := mount.ParseMountInfo("/proc/self/mountinfo"); return err }, nil},
		{"driver ProcMountTable.Mounts", func() error {
			_, err := driver.ProcMountTable{Path: "/proc/self/mountinfo", DevDir: "/dev"}.Mounts()
			return err
		}, nil},
		{"driver ProcMountTable.Mounts, right after a call to another process (a CSI Probe)", func() error {
			_, err := driver.ProcMountTable{Path: "/proc/self/mountinfo", DevDir: "/dev"}.Mounts()
			return err
		}, func() {
			if _, err := other.identity.Probe(t.Context(), &csi.ProbeRequest{}); err != nil {
				t.Error(err)
			}
		}},
		{"connector Find (scan of the subsystem's controllers)", func() error { _, _, err := c.Find(conn); return err }, nil},
		{"connector Refresh (one controller)", func() error { _, err := c.Refresh(ctrl); return err }, nil},
		{"uevent Listen + Close", func() error {
			l, err := uevent.Listen()
			if err == nil {
				err = l.Close()
			}
			return err
		}, nil},
		{"EvalSymlinks /sys/block/<namespace>", func() error { _, err := filepath.EvalSymlinks("/sys/block/" + ns.Name); return err }, nil},
		{"readdir /sys/block/<namespace>", func() error { _, err := os.ReadDir("/sys/block/" + ns.Name + "/"); return err }, nil},
		{"readdir /sys/class/nvme/<controller>", func() error { _, err := os.ReadDir("/sys/class/nvme/" + ctrl.Name + "/"); return err }, nil},
		{"stat /dev/<namespace>", func() error { _, err := os.Stat(ns.DevicePath); return err }, nil},
		{"readdir /sys/class/nvme-subsystem/<subsystem>", func() error { _, err := os.ReadDir(subDir + "/"); return err }, nil},
		{"read subsysnqn of the subsystem", func() error { _, err := os.ReadFile(subDir + "/subsysnqn"); return err }, nil},
		{"read nsid of the namespace", func() error { _, err := os.ReadFile("/sys/block/" + ns.Name + "/nsid"); return err }, nil},
		{"read uuid of the namespace", func() error { _, err := os.ReadFile("/sys/block/" + ns.Name + "/uuid"); return err }, nil},
		{"read nguid of the namespace", func() error { _, err := os.ReadFile("/sys/block/" + ns.Name + "/nguid"); return err }, nil},
		{"read size of the namespace", func() error { _, err := os.ReadFile("/sys/block/" + ns.Name + "/size"); return err }, nil},
		{"read dev of the namespace", func() error { _, err := os.ReadFile("/sys/block/" + ns.Name + "/dev"); return err }, nil},
		{"readdir holders of the namespace", func() error { _, err := os.ReadDir("/sys/block/" + ns.Name + "/holders"); return err }, nil},
		{"read state of the controller", func() error { _, err := os.ReadFile("/sys/class/nvme/" + ctrl.Name + "/state"); return err }, nil},
		{"read address of the controller", func() error { _, err := os.ReadFile("/sys/class/nvme/" + ctrl.Name + "/address"); return err }, nil},
		{"read cntlid of the controller", func() error { _, err := os.ReadFile("/sys/class/nvme/" + ctrl.Name + "/cntlid"); return err }, nil},
		{"read kato of the controller", func() error { _, err := os.ReadFile("/sys/class/nvme/" + ctrl.Name + "/kato"); return err }, nil},
		{"read hostid of the controller", func() error { _, err := os.ReadFile("/sys/class/nvme/" + ctrl.Name + "/hostid"); return err }, nil},
		{"connector Resolve without disk events (namespace there)", func() error {
			_, err := noEvents.Resolve(t.Context(), ctrl, nvme.NamespaceSelector{NSID: 1, UUID: labtarget.TwoNS1UUID})
			return err
		}, nil},
		{"connector Resolve (namespace there)", func() error {
			_, err := c.Resolve(t.Context(), ctrl, nvme.NamespaceSelector{NSID: 1, UUID: labtarget.TwoNS1UUID})
			return err
		}, nil},
		{"connector NamespaceOf (device to namespace and controllers)", func() error { _, _, err := c.NamespaceOf(ns.DevicePath); return err }, nil},
		{"connector Namespaces (of a controller)", func() error { _, err := c.Namespaces(ctrl); return err }, nil},
		{"state record: temp file + rename, no fsync", func() error { return writeRecord(stateDir, record, false) }, nil},
		{"state record: temp file + fsync + rename + dir fsync", func() error { return writeRecord(stateDir, record, true) }, nil},
		{"state record: read and parse", func() error {
			b, err := os.ReadFile(filepath.Join(stateDir, "r.json"))
			if err == nil {
				err = json.Unmarshal(b, &map[string]any{})
			}
			return err
		}, nil},
		{"a JSON log line into a pipe", func() error {
			logger.Info("rpc", "method", "NodeStageVolume", "code", "OK", "duration", time.Millisecond)
			return nil
		}, nil},
		{"device: what the superblock probe reads (8 KiB at the start, 12 KiB at the end; cold)", func() error {
			if err := readDevice(ns.DevicePath, buf[:8<<10], 0); err != nil {
				return err
			}
			return readDevice(ns.DevicePath, buf[:12<<10], ns.SizeBytes-12<<10)
		}, dropCachesQuiet},
		{"device: read 64 KiB at its start (page cache)", func() error { return readDevice(ns.DevicePath, buf[:64<<10], 0) }, nil},
		{"device: read 1 MiB at its start (page cache)", func() error { return readDevice(ns.DevicePath, buf, 0) }, nil},
		{"device: read 64 KiB at its start (cold)", func() error { return readDevice(ns.DevicePath, buf[:64<<10], 0) }, dropCachesQuiet},
		{"device: read 1 MiB at its start (cold)", func() error { return readDevice(ns.DevicePath, buf, 0) }, dropCachesQuiet},
		{"device: read 128 KiB at its end (cold)", func() error { return readDevice(ns.DevicePath, buf[:128<<10], ns.SizeBytes-128<<10) }, dropCachesQuiet},
	}
	for _, s := range steps {
		ds := make([]time.Duration, 0, n)
		for range n {
			if s.prep != nil {
				s.prep()
			}
			start := time.Now()
			if err := s.fn(); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			ds = append(ds, time.Since(start))
		}
		t.Logf("LAB-STEP median=%s min=%s max=%s %s", us(median(ds)), us(slices.Min(ds)), us(slices.Max(ds)), s.name)
	}
}

func us(d time.Duration) string { return ms(d) }

func writeRecord(dir string, v any, durable bool) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, "r.json"))
	}
	if err == nil && durable {
		var d *os.File
		if d, err = os.Open(dir); err == nil {
			err = d.Sync()
			_ = d.Close()
		}
	}
	return err
}

func readDevice(dev string, buf []byte, off int64) error {
	f, err := os.Open(dev)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	_, err = f.ReadAt(buf, off)
	return err
}

func dropCachesQuiet() {
	_ = os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0o200)
}

// TestFileSystemToolCosts times what a stage of a formatted volume used to
// run and no longer runs when the superblock probe settles it: blkid (once
// in the plugin's own check, once more in mount-utils) and fsck -a (the
// fsck front end, which runs fsck.ext4 or fsck.xfs: two process starts),
// against the mount(2) itself, for ext4 and xfs (LAB-TOOL lines, medians).
// fsck.xfs checks nothing: xfs checks itself at mount, and its fsck is a
// shell script that exits 0.
func TestFileSystemToolCosts(t *testing.T) {
	const n = 7
	tests := []struct {
		fsType, nqn string
		mkfs        []string
	}{
		{"ext4", labtarget.SubsystemTwo, []string{"mkfs.ext4", "-q", "-F"}},
		{"xfs", xfsSubsystem, []string{"mkfs.xfs", "-q", "-f"}},
	}
	for _, tt := range tests {
		t.Run(tt.fsType, func(t *testing.T) {
			if tt.nqn == xfsSubsystem {
				addXFSSubsystem(t)
			}
			c, _ := newLabConnector(t)
			ctrl := connectForTest(t, c, labConnection(tt.nqn))
			dev := resolveForTest(t, c, ctrl, nvme.NamespaceSelector{NSID: 1}).DevicePath
			if out, err := exec.CommandContext(t.Context(), tt.mkfs[0], append(tt.mkfs[1:], dev)...).CombinedOutput(); err != nil {
				t.Fatalf("%v: %v: %s", tt.mkfs, err, out)
			}
			var blkid, fsck, mounts []time.Duration
			for range n {
				blkid = append(blkid, timeCommand(t, "blkid", "-p", "-s", "TYPE", "-s", "PTTYPE", "-o", "export", dev))
				fsck = append(fsck, timeCommand(t, "fsck", "-a", dev))
				dir := t.TempDir()
				start := time.Now()
				if err := syscall.Mount(dev, dir, tt.fsType, 0, ""); err != nil {
					t.Fatalf("mount %s: %v", dev, err)
				}
				mounts = append(mounts, time.Since(start))
				if err := syscall.Unmount(dir, 0); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("LAB-TOOL fs=%s blkid_median=%s fsck_median=%s mount_syscall_median=%s (what a stage of a formatted volume ran before: blkid twice, fsck once)",
				tt.fsType, ms(median(blkid)), ms(median(fsck)), ms(median(mounts)))
		})
	}
}
