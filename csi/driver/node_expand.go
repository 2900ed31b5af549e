package driver

import (
	"context"
	"os"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// NodeExpandVolume grows the file system at volume_path online to the
// namespace's current size, which sysfs reads afresh. The namespace itself
// is grown on the target; a request beyond its size is OutOfRange.
func (d *Driver) NodeExpandVolume(ctx context.Context, req *csi.NodeExpandVolumeRequest) (*csi.NodeExpandVolumeResponse, error) {
	id, path := req.GetVolumeId(), req.GetVolumePath()
	if err := requireArgs("volume_id", id, "volume_path", path); err != nil {
		return nil, err
	}
	if req.GetVolumeCapability() != nil {
		if _, err := parseCapability(req.GetVolumeCapability()); err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
	}
	if err := d.volumes.acquire(id); err != nil {
		return nil, err
	}
	defer d.volumes.release(id)
	if err := ctxStatus(ctx); err != nil {
		return nil, err
	}
	if recs, err := d.volumeRecords(id); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	} else if len(recs) == 0 {
		return nil, status.Errorf(codes.NotFound, "volume %s is not staged on this node", id)
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "volume path %s: %v", path, err)
	}
	entries, err := d.mounts.Mounts()
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	devs := mountsAt(entries, path)
	if len(devs) == 0 {
		return nil, status.Errorf(codes.FailedPrecondition, "nothing is mounted at %s", path)
	}
	ns, _, err := d.cfg.Connector.NamespaceOf(devs[0])
	if err != nil {
		return nil, toStatus(err, "read the namespace size of "+devs[0])
	}
	if want := req.GetCapacityRange().GetRequiredBytes(); want > ns.SizeBytes {
		return nil, status.Errorf(codes.OutOfRange, "namespace %s is %d bytes, less than the %d requested: grow it on the target first", ns.Name, ns.SizeBytes, want)
	}
	if info.IsDir() {
		if _, err := d.resizer.Resize(devs[0], path); err != nil {
			return nil, status.Errorf(codes.Internal, "grow the file system on %s: %v", devs[0], err)
		}
	}
	d.log.Info("expanded", "volume_id", id, "device", devs[0], "bytes", ns.SizeBytes)
	return &csi.NodeExpandVolumeResponse{CapacityBytes: ns.SizeBytes}, nil
}
