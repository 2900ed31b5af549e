package nomadvolume

import (
	"fmt"
	"slices"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/hashicorp/nomad/api"
)

// RemoteID is the volume_id Nomad's client sends: the external_id, or the
// Nomad volume ID when there is none (structs/csi.go RemoteID).
func RemoteID(v *api.CSIVolume) string {
	if v.ExternalID != "" {
		return v.ExternalID
	}
	return v.ID
}

// MergeMountOptions is what a claim mounts with: a copy of the volume's
// options, then the job's group volume options over them, a non-empty
// fs_type replacing and a non-nil mount_flags replacing the whole list
// (api.CSIMountOptions.Merge, as Nomad's client applies it).
func MergeMountOptions(volume, job *api.CSIMountOptions) *api.CSIMountOptions {
	out := &api.CSIMountOptions{}
	if volume != nil {
		out.FSType = volume.FSType
		out.MountFlags = slices.Clone(volume.MountFlags)
	}
	out.Merge(job)
	return out
}

// AccessModes are the access mode strings Nomad accepts, in its order.
var AccessModes = []api.CSIVolumeAccessMode{
	api.CSIVolumeAccessModeSingleNodeReader,
	api.CSIVolumeAccessModeSingleNodeWriter,
	api.CSIVolumeAccessModeMultiNodeReader,
	api.CSIVolumeAccessModeMultiNodeSingleWriter,
	api.CSIVolumeAccessModeMultiNodeMultiWriter,
}

// AttachmentModes are the attachment mode strings Nomad accepts.
var AttachmentModes = []api.CSIVolumeAttachmentMode{
	api.CSIVolumeAttachmentModeFilesystem,
	api.CSIVolumeAttachmentModeBlockDevice,
}

var csiAccessModes = map[api.CSIVolumeAccessMode]csi.VolumeCapability_AccessMode_Mode{
	api.CSIVolumeAccessModeSingleNodeReader:      csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY,
	api.CSIVolumeAccessModeSingleNodeWriter:      csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER,
	api.CSIVolumeAccessModeMultiNodeReader:       csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY,
	api.CSIVolumeAccessModeMultiNodeSingleWriter: csi.VolumeCapability_AccessMode_MULTI_NODE_SINGLE_WRITER,
	api.CSIVolumeAccessModeMultiNodeMultiWriter:  csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER,
}

// ReaderOnly reports whether an access mode allows no writer; Nomad then
// requires read_only on the claim.
func ReaderOnly(m api.CSIVolumeAccessMode) bool {
	return m == api.CSIVolumeAccessModeSingleNodeReader || m == api.CSIVolumeAccessModeMultiNodeReader
}

// Capability is the VolumeCapability Nomad's client puts in NodeStage and
// NodePublish: block{} for block-device, mount{fs_type, mount_flags} from
// the merged options for file-system, the access mode one to one.
func Capability(access api.CSIVolumeAccessMode, attachment api.CSIVolumeAttachmentMode, mo *api.CSIMountOptions) (*csi.VolumeCapability, error) {
	mode, ok := csiAccessModes[access]
	if !ok {
		return nil, fmt.Errorf("access_mode %q is not one Nomad knows: %v", access, AccessModes)
	}
	c := &csi.VolumeCapability{AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode}}
	switch attachment {
	case api.CSIVolumeAttachmentModeBlockDevice:
		c.AccessType = &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}
	case api.CSIVolumeAttachmentModeFilesystem:
		m := &csi.VolumeCapability_MountVolume{}
		if mo != nil {
			m.FsType, m.MountFlags = mo.FSType, slices.Clone(mo.MountFlags)
		}
		c.AccessType = &csi.VolumeCapability_Mount{Mount: m}
	default:
		return nil, fmt.Errorf("attachment_mode %q is not one Nomad knows: %v", attachment, AttachmentModes)
	}
	return c, nil
}

// Usage is the last element of Nomad's staging and publish paths
// (UsageOptions.ToFS): "ro-" or "rw-" from the claim's read_only, the
// attachment mode, "-", the access mode; e.g.
// rw-file-system-single-node-writer.
func Usage(readOnly bool, attachment api.CSIVolumeAttachmentMode, access api.CSIVolumeAccessMode) string {
	rw := "rw-"
	if readOnly {
		rw = "ro-"
	}
	return rw + string(attachment) + "-" + string(access)
}
