package driver

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
)

// Reasons of health entries: CamelCase, for machines and short displays.
const (
	reasonNotMounted       = "NotMounted"
	reasonDeviceGone       = "DeviceGone"
	reasonControllerDown   = "ControllerNotLive"
	reasonFilesystemErrors = "FilesystemErrors"
	reasonHealthUnknown    = "HealthUnreadable"
)

// NodeGetVolumeHealth reports what is wrong with a staged volume, each
// with a message a person can act on: the mount is gone, the device
// vanished, the controller is not live, or the file system recorded
// errors. No entries means healthy. (CSI 1.13's successor of
// VolumeCondition.)
func (d *Driver) NodeGetVolumeHealth(ctx context.Context, req *csi.NodeGetVolumeHealthRequest) (*csi.NodeGetVolumeHealthResponse, error) {
	id := req.GetVolumeId()
	if err := requireArgs("volume_id", id); err != nil {
		return nil, toStatus(err, "volume health")
	}
	what := "health of volume " + id
	if err := ctx.Err(); err != nil {
		return nil, toStatus(err, what)
	}
	recs, err := d.volumeRecords(id)
	if err != nil {
		return nil, toStatus(err, what)
	}
	if len(recs) == 0 {
		return nil, toStatus(notFound("volume %s is not staged on this node", id), what)
	}
	entries, err := d.mounts.Mounts()
	if err != nil {
		return nil, toStatus(err, what)
	}
	var paths []string
	block := false
	for _, r := range recs {
		if req.GetStagingTargetPath() == "" || filepath.Clean(req.GetStagingTargetPath()) == filepath.Clean(r.StagingPath) {
			paths = append(paths, stagedPath(r))
		}
		block = block || r.Block
	}
	if p := req.GetVolumePublishPath(); p != "" {
		paths = append(paths, p)
	}
	health := &csi.VolumeHealth{VolumeId: id}
	seen := map[string]bool{}
	for _, p := range paths {
		for _, e := range d.pathHealth(entries, p, block) {
			if k := e.GetStatus().String() + e.GetReason(); !seen[k] {
				seen[k] = true
				health.HealthStatuses = append(health.HealthStatuses, e)
			}
		}
	}
	return &csi.NodeGetVolumeHealthResponse{VolumeHealth: health}, nil
}

// stagedPath is where a stage's mount is: the directory, or its block file.
func stagedPath(r stageRecord) string {
	if r.Block {
		return blockStagingFile(r.StagingPath)
	}
	return filepath.Clean(r.StagingPath)
}

// pathHealth reports on the volume mounted at path. A block volume's path
// is a device node bound onto a file, with no file system to probe: only
// its controller is asked about.
func (d *Driver) pathHealth(entries []MountEntry, path string, block bool) []*csi.VolumeHealth_VolumeHealthEntry {
	at := mountsAt(entries, path)
	if len(at) == 0 {
		return []*csi.VolumeHealth_VolumeHealthEntry{unhealthy(csi.VolumeHealthErrorType_INACCESSIBLE, reasonNotMounted,
			fmt.Sprintf("nothing is mounted at %s: stage (or publish) the volume again", path))}
	}
	fsPath := path
	if block {
		fsPath = ""
	}
	h, err := d.deviceHealth(at[0].Device, fsPath)
	if err != nil {
		return []*csi.VolumeHealth_VolumeHealthEntry{unhealthy(csi.VolumeHealthErrorType_INACCESSIBLE, reasonDeviceGone,
			fmt.Sprintf("device %s mounted at %s is gone (its controller was deleted, e.g. after ctrl_loss_tmo): unstage and stage the volume again", at[0].Device, path))}
	}
	return healthEntries(h)
}

// deviceHealth asks the connector about a mounted namespace device and
// the file system mounted at fsPath ("" for a block volume).
func (d *Driver) deviceHealth(device, fsPath string) (kernel.Health, error) {
	ns, ctrls, err := d.cfg.Connector.NamespaceOf(device)
	if err != nil {
		return kernel.Health{}, fmt.Errorf("device %s: %w", device, err)
	}
	if len(ctrls) == 0 {
		return kernel.Health{}, fmt.Errorf("device %s has no controller", device)
	}
	h, err := d.cfg.Connector.Health(ctrls[0], ns, fsPath)
	if err != nil {
		return kernel.Health{Message: fmt.Sprintf("cannot read the health of %s: %v", device, err)}, nil
	}
	return h, nil
}

func healthEntries(h kernel.Health) []*csi.VolumeHealth_VolumeHealthEntry {
	if h.Healthy() {
		return nil
	}
	switch {
	case h.ControllerState != kernel.StateLive && h.ControllerState != "":
		return []*csi.VolumeHealth_VolumeHealthEntry{unhealthy(csi.VolumeHealthErrorType_INACCESSIBLE, reasonControllerDown, h.Message)}
	case h.ControllerState == "":
		return []*csi.VolumeHealth_VolumeHealthEntry{unhealthy(csi.VolumeHealthErrorType_INACCESSIBLE, reasonDeviceGone, h.Message)}
	case h.FSErrors > 0 || h.ReadOnly:
		return []*csi.VolumeHealth_VolumeHealthEntry{unhealthy(csi.VolumeHealthErrorType_DEGRADED, reasonFilesystemErrors, h.Message)}
	}
	return []*csi.VolumeHealth_VolumeHealthEntry{unhealthy(csi.VolumeHealthErrorType_DEGRADED, reasonHealthUnknown, h.Message)}
}

func unhealthy(t csi.VolumeHealthErrorType, reason, msg string) *csi.VolumeHealth_VolumeHealthEntry {
	return &csi.VolumeHealth_VolumeHealthEntry{Status: t, Reason: reason, Message: msg}
}

// NodeGetStorageHealth reports every controller of this node that is not
// live: its target is unreachable from here.
func (d *Driver) NodeGetStorageHealth(ctx context.Context, _ *csi.NodeGetStorageHealthRequest) (*csi.NodeGetStorageHealthResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, toStatus(err, "storage health")
	}
	ctrls, err := d.cfg.Connector.Controllers()
	if err != nil {
		return nil, toStatus(err, "storage health: list controllers")
	}
	// One entry for all: the spec allows one per (status, reason).
	var down []string
	for _, c := range ctrls {
		if c.State != kernel.StateLive {
			down = append(down, fmt.Sprintf("controller %s to %s at %s:%s is %s", c.Name, c.Subsystem, c.TrAddr, c.TrSvcID, c.State))
		}
	}
	resp := &csi.NodeGetStorageHealthResponse{}
	if len(down) > 0 {
		resp.BackendHealth = []*csi.NodeGetStorageHealthResponse_StorageBackendHealth{{
			Status:  csi.StorageHealthErrorType_STORAGE_UNREACHABLE,
			Reason:  reasonControllerDown,
			Message: strings.Join(down, "; ") + ": check the targets and the network",
		}}
	}
	return resp, nil
}
