package driver

import (
	"context"
	"fmt"
	"os"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// NodeExpandVolume grows the file system at volume_path online to the
// namespace's current size, which sysfs reads afresh. The namespace itself
// is grown on the target; a request beyond its size is OutOfRange.
func (d *Driver) NodeExpandVolume(ctx context.Context, req *csi.NodeExpandVolumeRequest) (*csi.NodeExpandVolumeResponse, error) {
	size, err := d.expandVolume(ctx, req)
	if err != nil {
		return nil, toStatus(err, fmt.Sprintf("expand volume %s at %s", req.GetVolumeId(), req.GetVolumePath()))
	}
	return &csi.NodeExpandVolumeResponse{CapacityBytes: size}, nil
}

func (d *Driver) expandVolume(ctx context.Context, req *csi.NodeExpandVolumeRequest) (int64, error) {
	id, path := req.GetVolumeId(), req.GetVolumePath()
	if err := requireArgs("volume_id", id, "volume_path", path); err != nil {
		return 0, err
	}
	if req.GetVolumeCapability() != nil {
		if _, err := parseCapability(req.GetVolumeCapability()); err != nil {
			return 0, invalid("%v", err)
		}
	}
	o, err := d.begin(ctx, id)
	if err != nil {
		return 0, err
	}
	defer o.end()
	recs, err := d.volumeRecords(id)
	if err != nil {
		return 0, err
	}
	if len(recs) == 0 {
		return 0, notFound("volume %s is not staged on this node", id)
	}
	info, err := os.Stat(path)
	if err != nil {
		return 0, notFound("volume path %s: %v", path, err)
	}
	entries, err := d.mounts.Mounts()
	if err != nil {
		return 0, err
	}
	at := mountsAt(entries, path)
	if len(at) == 0 {
		return 0, precondition("nothing is mounted at %s", path)
	}
	// Grow only this volume's file system: the mount at volume_path must
	// be of the device one of its stages mounted.
	ours := false
	for _, r := range recs {
		for _, e := range mountsAt(entries, stagedPath(r)) {
			ours = ours || sameMount(e, at[0])
		}
	}
	if !ours {
		return 0, precondition("%s holds %s, which is not where volume %s is staged", path, at[0].Device, id)
	}
	ns, _, err := d.cfg.Connector.NamespaceOf(at[0].Device)
	if err != nil {
		return 0, fmt.Errorf("read the namespace size of %s: %w", at[0].Device, err)
	}
	if want := req.GetCapacityRange().GetRequiredBytes(); want > ns.SizeBytes {
		return 0, fail(outOfRange, "namespace %s is %d bytes, less than the %d requested: grow it on the target first", ns.Name, ns.SizeBytes, want)
	}
	if info.IsDir() {
		err := o.finish("growing the file system on "+at[0].Device, mountBound, func(context.Context) error {
			if _, err := d.resizer.Resize(at[0].Device, path); err != nil {
				return fmt.Errorf("grow the file system on %s: %w", at[0].Device, err)
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	d.log.Info("expanded", "volume_id", id, "device", at[0].Device, "bytes", ns.SizeBytes)
	return ns.SizeBytes, nil
}
