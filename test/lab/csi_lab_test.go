//go:build lab

package lab

import (
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
	"github.com/nvmeof/nvmeof/test/lab/labtarget"
)

// The node service of the real nvmeof-csi binary against the real kernel:
// the CO's call sequence, each call twice, data across a full cycle.

// 1. File-system volumes, ext4 and xfs, formatted on first stage only.
func TestCSIFilesystemLifecycle(t *testing.T) {
	tests := []struct {
		fsType, nqn, uuid string
	}{
		{"ext4", labtarget.SubsystemTwo, labtarget.TwoNS1UUID},
		// mkfs.xfs wants 300 MB or more: a larger namespace of our own.
		{"xfs", xfsSubsystem, xfsNS1UUID},
	}
	forEachBackend(t, func(t *testing.T, backend string) {
		for _, tt := range tests {
			t.Run(tt.fsType, func(t *testing.T) {
				fsType, nqn := tt.fsType, tt.nqn
				if nqn == xfsSubsystem {
					addXFSSubsystem(t)
				}
				disconnectAtEnd(t, nqn)
				wipeNamespace(t, nqn, 1)
				socket, state := pluginDirs(t)
				p := startPluginWith(t, socket, state, pluginOptions{connector: backend})
				v := newCSIVolume(t, "lab-"+fsType, mountCapability(fsType), volumeContext(nqn, 1, tt.uuid))
				p.unstageAtEnd(t, v)

				p.stage(t, v)
				p.stage(t, v)
				mi := mountAt(t, v.staging)
				if mi.FsType != fsType || !strings.HasPrefix(mi.Source, "/dev/nvme") {
					t.Fatalf("staging mount = %s on %s, want %s on an NVMe namespace", mi.FsType, mi.Source, fsType)
				}
				if ctrls := usableControllers(t, nqn); len(ctrls) != 1 {
					t.Fatalf("controllers of %s after two stages: %+v, want one", nqn, ctrls)
				}
				p.publish(t, v)
				p.publish(t, v)
				if pub := mountAt(t, v.target); pub.Source != mi.Source {
					t.Errorf("published %s, staged %s", pub.Source, mi.Source)
				}
				sum := writeRandomFile(t, filepath.Join(v.target, "data"), 1<<20)

				p.unpublish(t, v)
				p.unpublish(t, v)
				if _, err := os.Stat(v.target); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("target %s after unpublish: %v, want it removed", v.target, err)
				}
				p.unstage(t, v)
				p.unstage(t, v)
				assertNothingLeft(t, nqn, filepath.Dir(v.staging))

				// A new cycle finds the file system (no reformat) and the data.
				p.stage(t, v)
				p.publish(t, v)
				dropCaches(t)
				if got := fileSum(t, filepath.Join(v.target, "data")); got != sum {
					t.Errorf("data after a full cycle: sha256 %x, want %x", got, sum)
				}
				p.unpublish(t, v)
				p.unstage(t, v)
				assertNothingLeft(t, nqn, filepath.Dir(v.staging))
			})
		}
	})
}

// 1b. A block volume: the device node bound onto a file target.
func TestCSIBlockLifecycle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		nqn := labtarget.SubsystemTwo
		disconnectAtEnd(t, nqn)
		socket, state := pluginDirs(t)
		p := startPluginWith(t, socket, state, pluginOptions{connector: backend})
		v := newCSIVolume(t, "lab-block", blockCapability(), volumeContext(nqn, 1, labtarget.TwoNS1UUID))
		p.unstageAtEnd(t, v)

		p.stage(t, v)
		p.stage(t, v)
		staged := mountAt(t, filepath.Join(v.staging, "block"))
		p.publish(t, v)
		p.publish(t, v)
		ctrls := usableControllers(t, nqn)
		if len(ctrls) != 1 {
			t.Fatalf("controllers of %s: %+v, want one", nqn, ctrls)
		}
		c, _ := newLabConnector(t)
		ns := resolveForTest(t, c, ctrls[0], nvme.NamespaceSelector{NSID: 1})
		if err := sameDevice(v.target, ns.DevicePath); err != nil {
			t.Fatal(err)
		}
		t.Logf("staged bind %s root %s; target is %s", staged.FsType, staged.Root, ns.DevicePath)
		sum := writeRandomFile(t, v.target, 1<<20)

		p.unpublish(t, v)
		p.unpublish(t, v)
		if _, err := os.Stat(v.target); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("target %s after unpublish: %v, want it removed", v.target, err)
		}
		p.unstage(t, v)
		p.unstage(t, v)
		assertNothingLeft(t, nqn, filepath.Dir(v.staging))

		p.stage(t, v)
		p.publish(t, v)
		dropCaches(t)
		if got := blockSum(t, v.target, 1<<20); got != sum {
			t.Errorf("data after a full cycle: sha256 %x, want %x", got, sum)
		}
		p.unpublish(t, v)
		p.unstage(t, v)
		assertNothingLeft(t, nqn, filepath.Dir(v.staging))
	})
}

// 1c. A namespace that is not the one the context names is never mounted;
// a context the core rejects is InvalidArgument with the core's message.
func TestCSIStageRefusesWrongVolume(t *testing.T) {
	nqn := labtarget.SubsystemOne
	disconnectAtEnd(t, nqn)
	socket, state := pluginDirs(t)
	p := startPlugin(t, socket, state)

	// nsid 1 with the uuid of nsid 2.
	wrong := newCSIVolume(t, "lab-wrong-uuid", mountCapability("ext4"), volumeContext(nqn, 1, labtarget.OneNS2UUID))
	p.unstageAtEnd(t, wrong)
	_, err := p.node.NodeStageVolume(rpcContext(t), wrong.stageRequest())
	if code := status.Code(err); code != codes.FailedPrecondition ||
		!strings.Contains(err.Error(), labtarget.OneNS1UUID) || !strings.Contains(err.Error(), labtarget.OneNS2UUID) {
		t.Errorf("stage with the wrong uuid = %v (%s), want FailedPrecondition naming both uuids", err, code)
	}
	if left := mountsUnder(t, filepath.Dir(wrong.staging)); len(left) != 0 {
		t.Errorf("a refused stage mounted: %+v", left)
	}
	if ctrls := usableControllers(t, nqn); len(ctrls) != 0 {
		t.Errorf("a refused stage left controllers of %s: %+v", nqn, ctrls)
	}

	tests := []struct {
		name string
		vc   map[string]string
	}{
		{"typo in a key", map[string]string{"traddr": labtarget.TrAddr, "nqn": nqn, "ctrl_los_tmo": "5"}},
		{"out of range", map[string]string{"traddr": labtarget.TrAddr, "nqn": nqn, "reconnect_delay": "0"}},
		{"no nqn", map[string]string{"traddr": labtarget.TrAddr}},
		{"uuid not a uuid", map[string]string{"traddr": labtarget.TrAddr, "nqn": nqn, "nsid": "1", "uuid": "1111"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, coreErr := nvme.ParseVolumeContext(tt.vc)
			if coreErr == nil {
				t.Fatalf("the core accepts %v", tt.vc)
			}
			v := newCSIVolume(t, "lab-bad", mountCapability("ext4"), tt.vc)
			_, err := p.node.NodeStageVolume(rpcContext(t), v.stageRequest())
			st, _ := status.FromError(err)
			if st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), coreErr.Error()) {
				t.Errorf("stage = %v, want InvalidArgument with %q", err, coreErr)
			}
			if left := mountsUnder(t, filepath.Dir(v.staging)); len(left) != 0 {
				t.Errorf("a bad context mounted: %+v", left)
			}
		})
	}
}

// 2. Two namespaces of one subsystem share its controller; unstaging one
// leaves it connected and the other serving I/O.
func TestCSITwoNamespacesOneController(t *testing.T) {
	nqn := labtarget.SubsystemOne
	disconnectAtEnd(t, nqn)
	wipeNamespace(t, nqn, 1)
	wipeNamespace(t, nqn, 2)
	socket, state := pluginDirs(t)
	p := startPlugin(t, socket, state)
	first := newCSIVolume(t, "lab-one-1", mountCapability("ext4"), volumeContext(nqn, 1, labtarget.OneNS1UUID))
	second := newCSIVolume(t, "lab-one-2", mountCapability("ext4"), volumeContext(nqn, 2, labtarget.OneNS2UUID))
	p.unstageAtEnd(t, first)
	p.unstageAtEnd(t, second)

	for _, v := range []csiVolume{first, second} {
		p.stage(t, v)
		p.publish(t, v)
	}
	ctrls := usableControllers(t, nqn)
	if len(ctrls) != 1 {
		t.Fatalf("controllers of %s with two namespaces staged: %+v, want one", nqn, ctrls)
	}
	if a, b := mountAt(t, first.staging).Source, mountAt(t, second.staging).Source; a == b {
		t.Fatalf("both volumes staged from %s", a)
	}
	before := writeRandomFile(t, filepath.Join(second.target, "before"), 1<<20)

	p.unpublish(t, first)
	p.unstage(t, first)
	after := usableControllers(t, nqn)
	if len(after) != 1 || after[0].Name != ctrls[0].Name || ctrlSysfs(t, after[0], "state") != kernel.StateLive {
		t.Fatalf("after unstaging %s: controllers %+v, want %s still live", first.id, after, ctrls[0].Name)
	}
	written := writeRandomFile(t, filepath.Join(second.target, "after"), 1<<20)
	dropCaches(t)
	if got := fileSum(t, filepath.Join(second.target, "after")); got != written {
		t.Errorf("read back after the other unstage: sha256 %x, want %x", got, written)
	}
	if got := fileSum(t, filepath.Join(second.target, "before")); got != before {
		t.Errorf("data written before the other unstage: sha256 %x, want %x", got, before)
	}

	p.unpublish(t, second)
	p.unstage(t, second)
	assertNothingLeft(t, nqn, filepath.Dir(second.staging))
}

// blockSum reads size bytes from the start of a block device and sums them.
func blockSum(t *testing.T, path string, size int) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	buf := make([]byte, size)
	if _, err := f.ReadAt(buf, 0); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return sha256.Sum256(buf)
}
