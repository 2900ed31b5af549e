package driver

import (
	"context"
	"fmt"
	"math"
	"os"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// NodeGetVolumeStats reports bytes and inodes of a published or staged
// file system (statfs), or the size of a block volume. Health is
// NodeGetVolumeHealth's job in CSI 1.13.
func (d *Driver) NodeGetVolumeStats(ctx context.Context, req *csi.NodeGetVolumeStatsRequest) (*csi.NodeGetVolumeStatsResponse, error) {
	id, path := req.GetVolumeId(), req.GetVolumePath()
	if err := requireArgs("volume_id", id, "volume_path", path); err != nil {
		return nil, err
	}
	if err := ctxStatus(ctx); err != nil {
		return nil, err
	}
	if recs, err := d.volumeRecords(id); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	} else if len(recs) == 0 {
		return nil, status.Errorf(codes.NotFound, "volume %s is not staged on this node", id)
	}
	exists, err := pathExists(path)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "look at %s: %v", path, err)
	}
	if !exists {
		return nil, status.Errorf(codes.NotFound, "volume path %s does not exist", path)
	}
	entries, err := d.mounts.Mounts()
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	devs := mountsAt(entries, path)
	if len(devs) == 0 {
		return nil, status.Errorf(codes.NotFound, "volume %s is not mounted at %s", id, path)
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "volume %s at %s cannot be read (its device may be gone; NodeGetVolumeHealth says more): %v", id, path, err)
	}
	if !info.IsDir() {
		ns, _, err := d.cfg.Connector.NamespaceOf(devs[0])
		if err != nil {
			return nil, toStatus(err, "read the size of "+devs[0])
		}
		return &csi.NodeGetVolumeStatsResponse{Usage: []*csi.VolumeUsage{{Unit: csi.VolumeUsage_BYTES, Total: ns.SizeBytes}}}, nil
	}
	usage, err := fsUsage(path)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &csi.NodeGetVolumeStatsResponse{Usage: usage}, nil
}

// volumeRecords returns the stages of volume id the state dir holds.
func (d *Driver) volumeRecords(id string) ([]volumeRecord, error) {
	recs, err := d.state.volumes()
	if err != nil {
		return nil, err
	}
	var out []volumeRecord
	for _, r := range recs {
		if r.VolumeID == id {
			out = append(out, r)
		}
	}
	return out, nil
}

func fsUsage(path string) ([]*csi.VolumeUsage, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return nil, fmt.Errorf("statfs %s: %w", path, err)
	}
	bsize := st.Bsize
	return []*csi.VolumeUsage{
		{Unit: csi.VolumeUsage_BYTES, Total: clamp(st.Blocks) * bsize, Available: clamp(st.Bavail) * bsize, Used: clamp(st.Blocks-st.Bfree) * bsize},
		{Unit: csi.VolumeUsage_INODES, Total: clamp(st.Files), Available: clamp(st.Ffree), Used: clamp(st.Files - st.Ffree)},
	}, nil
}

// clamp converts a statfs count; no file system comes near 2^63.
func clamp(u uint64) int64 {
	return int64(min(u, math.MaxInt64)) //nolint:gosec // clamped to MaxInt64 first
}
