package driver

import (
	"context"
	"fmt"
	"math"
	"os"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
)

// NodeGetVolumeStats reports bytes and inodes of a published or staged
// file system (statfs), or the size of a block volume. Health is
// NodeGetVolumeHealth's job in CSI 1.13.
func (d *Driver) NodeGetVolumeStats(ctx context.Context, req *csi.NodeGetVolumeStatsRequest) (*csi.NodeGetVolumeStatsResponse, error) {
	usage, err := d.volumeStats(ctx, req)
	if err != nil {
		return nil, toStatus(err, fmt.Sprintf("stats of volume %s at %s", req.GetVolumeId(), req.GetVolumePath()))
	}
	return &csi.NodeGetVolumeStatsResponse{Usage: usage}, nil
}

func (d *Driver) volumeStats(ctx context.Context, req *csi.NodeGetVolumeStatsRequest) ([]*csi.VolumeUsage, error) {
	id, path := req.GetVolumeId(), req.GetVolumePath()
	if err := requireArgs("volume_id", id, "volume_path", path); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if recs, err := d.volumeRecords(id); err != nil {
		return nil, err
	} else if len(recs) == 0 {
		return nil, notFound("volume %s is not staged on this node", id)
	}
	exists, err := pathExists(path)
	if err != nil {
		return nil, fmt.Errorf("look at %s: %w", path, err)
	}
	if !exists {
		return nil, notFound("volume path %s does not exist", path)
	}
	entries, err := d.mounts.Mounts()
	if err != nil {
		return nil, err
	}
	at := mountsAt(entries, path)
	if len(at) == 0 {
		return nil, notFound("volume %s is not mounted at %s", id, path)
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, unavailable("volume %s at %s cannot be read (its device may be gone; NodeGetVolumeHealth says more): %v", id, path, err)
	}
	if !info.IsDir() {
		ns, _, err := d.cfg.Connector.NamespaceOf(at[0].Device)
		if err != nil {
			return nil, fmt.Errorf("read the size of %s: %w", at[0].Device, err)
		}
		return []*csi.VolumeUsage{{Unit: csi.VolumeUsage_BYTES, Total: ns.SizeBytes}}, nil
	}
	return fsUsage(path)
}

// volumeRecords returns the stages of volume id the state dir holds.
func (d *Driver) volumeRecords(id string) ([]stageRecord, error) {
	recs, err := d.state.stages()
	if err != nil {
		return nil, err
	}
	var out []stageRecord
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
