package driver_test

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	mount "k8s.io/mount-utils"
)

// extHead is the first 8 KiB of an ext4 file system made by mke2fs 1.47.0
// (fsprobe's sample).
func extHead(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../internal/fsprobe/testdata/ext4.head")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withErrors marks the ext superblock in head as having recorded errors,
// with the checksum the kernel would write.
func withErrors(head []byte) []byte {
	head = slices.Clone(head)
	sb := head[1024:2048]
	binary.LittleEndian.PutUint16(sb[0x3a:], 0x1|0x2)
	binary.LittleEndian.PutUint32(sb[0x3fc:], ^crc32.Checksum(sb[:0x3fc], crc32.MakeTable(crc32.Castagnoli)))
	return head
}

// writeHead writes b at the start of namespace nsid of nqn, on the target.
func writeHead(t *testing.T, e *env, nqn string, nsid uint32, b []byte) {
	t.Helper()
	backing, ok := e.fake.BackingFile(nqn, nsid)
	if !ok {
		t.Fatalf("no backing file of %s nsid %d", nqn, nsid)
	}
	f, err := os.OpenFile(backing, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// mountOf is the fake mounter's record of the mount at path.
func mountOf(t *testing.T, e *env, path string) mount.MountPoint {
	t.Helper()
	mps, err := e.mounter.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, mp := range mps {
		if mp.Path == path {
			return mp
		}
	}
	t.Fatalf("nothing mounted at %s", path)
	return mount.MountPoint{}
}

// A formatted volume whose superblock shows a clean file system of the
// type asked for, and nothing else on the device, is mounted without blkid
// and fsck. Everything else goes to blkid (and fsck for a writable mount),
// as before.
func TestStageOfAFormattedVolume(t *testing.T) {
	mbr := func(h []byte) []byte { h = slices.Clone(h); h[510], h[511] = 0x55, 0xaa; return h }
	tests := []struct {
		name      string
		head      func(t *testing.T) []byte
		mode      csi.VolumeCapability_AccessMode_Mode
		fsType    string
		blkid     bool // asked
		fsck      bool // ran
		wantCode  codes.Code
		wantOpts  []string // among the mount's options
		wantNoOpt string
	}{
		{name: "clean ext4", head: extHead, mode: rwo, fsType: "ext4"},
		{name: "ext4 that recorded errors is checked first", head: func(t *testing.T) []byte { return withErrors(extHead(t)) }, mode: rwo, fsType: "ext4", blkid: true, fsck: true},
		{name: "read-only ext4 that recorded errors is mounted without a check, as before", head: func(t *testing.T) []byte { return withErrors(extHead(t)) },
			mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY, fsType: "ext4", wantOpts: []string{"ro", "noload"}},
		{name: "ext4 behind a partition table goes to blkid", head: func(t *testing.T) []byte { return mbr(extHead(t)) }, mode: rwo, fsType: "ext4", blkid: true, fsck: true},
		{name: "ext4 asked for as xfs goes to blkid and is refused", head: extHead, mode: rwo, fsType: "xfs", blkid: true, wantCode: codes.FailedPrecondition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			writeHead(t, e, testNQN, 1, tt.head(t))
			_, err := e.drv.NodeStageVolume(context.Background(), e.stageReq("vol", testNQN, "1", mountCap(tt.fsType, tt.mode)))
			if tt.wantCode != codes.OK {
				wantCode(t, err, tt.wantCode)
			} else if err != nil {
				t.Fatal(err)
			}
			if got := e.exec.Ran("blkid") > 0; got != tt.blkid {
				t.Errorf("blkid asked: %v, want %v (calls %v)", got, tt.blkid, e.exec.Calls())
			}
			if got := e.exec.Ran("fsck") > 0; got != tt.fsck {
				t.Errorf("fsck ran: %v, want %v (calls %v)", got, tt.fsck, e.exec.Calls())
			}
			if n := e.exec.Ran("mkfs.ext4") + e.exec.Ran("mkfs.xfs"); n != 0 {
				t.Errorf("a formatted device was formatted (%d)", n)
			}
			if tt.wantCode != codes.OK {
				return
			}
			mp := mountOf(t, e, e.path("staging", "vol"))
			if mp.Type != tt.fsType {
				t.Errorf("mounted as %q, want %q", mp.Type, tt.fsType)
			}
			for _, o := range tt.wantOpts {
				if !slices.Contains(mp.Opts, o) {
					t.Errorf("mount options %v lack %q", mp.Opts, o)
				}
			}
		})
	}
}

// A volume the plugin started formatting (and a kill cut short) is never
// taken for a clean one by the superblock probe: blkid decides, as before.
func TestStageAfterACutShortFormatAsksBlkid(t *testing.T) {
	e := newEnv(t)
	e.exec.FailTool("mkfs.ext4", 137)
	if _, err := e.drv.NodeStageVolume(context.Background(), e.stageReq("vol", testNQN, "1", mountCap("ext4", rwo))); err == nil {
		t.Fatal("staged with a killed mkfs")
	}
	e.exec.FailTool("mkfs.ext4", 0)
	writeHead(t, e, testNQN, 1, extHead(t)) // what the killed mkfs got to write
	asked := e.exec.Ran("blkid")
	if _, err := e.drv.NodeStageVolume(context.Background(), e.stageReq("vol", testNQN, "1", mountCap("ext4", rwo))); err != nil {
		t.Fatal(err)
	}
	if e.exec.Ran("blkid") == asked {
		t.Errorf("the probe decided over a format record of ours; blkid should have")
	}
}

// Mount flags are checked before anything happens: an option that asks
// mount(8) for another kind of mount is refused, naming the field.
func TestStageRefusesMountFlagsForMount8(t *testing.T) {
	for _, flag := range []string{"bind", "remount", "nosuid,rbind", "loop", "make-shared", "X-mount.mkdir", "user"} {
		t.Run(flag, func(t *testing.T) {
			e := newEnv(t)
			vc := mountCap("ext4", rwo)
			vc.GetMount().MountFlags = []string{flag}
			_, err := e.drv.NodeStageVolume(context.Background(), e.stageReq("vol", testNQN, "1", vc))
			wantCode(t, err, codes.InvalidArgument)
			if !strings.Contains(err.Error(), "mount_flags") {
				t.Errorf("error %q does not name the field", err)
			}
			if n := e.controllers(); n != 0 {
				t.Errorf("%d controllers connected for a refused request", n)
			}
		})
	}
}

// Per-mount flags reach the binds: a read-only publish with the volume's
// flags, and userspace-only options (_netdev) are no file-system option.
func TestPublishBindsWithItsFlags(t *testing.T) {
	e := newEnv(t)
	vc := mountCap("ext4", rwo)
	vc.GetMount().MountFlags = []string{"nosuid,nodev", "_netdev"}
	req := e.stageReq("vol", testNQN, "1", vc)
	if _, err := e.drv.NodeStageVolume(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	target := e.path("pods", "vol")
	if _, err := e.drv.NodePublishVolume(context.Background(), &csi.NodePublishVolumeRequest{
		VolumeId: "vol", StagingTargetPath: req.StagingTargetPath, TargetPath: target, VolumeCapability: vc, Readonly: true,
	}); err != nil {
		t.Fatal(err)
	}
	mp := mountOf(t, e, target)
	for _, o := range []string{"bind", "ro", "nosuid,nodev"} {
		if !slices.Contains(mp.Opts, o) {
			t.Errorf("publish options %v lack %q", mp.Opts, o)
		}
	}
	if _, err := e.drv.NodeUnpublishVolume(context.Background(), &csi.NodeUnpublishVolumeRequest{VolumeId: "vol", TargetPath: target}); err != nil {
		t.Fatal(err)
	}
	if devs := e.mountedAt(target); len(devs) != 0 {
		t.Errorf("still mounted at %s: %v", target, devs)
	}
}
