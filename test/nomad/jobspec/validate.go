package jobspec

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/nomad/api"

	"github.com/nvmeof/nvmeof/csi/nomadvolume"
)

// Validate returns what Nomad refuses in the parts of a (canonicalized)
// job the driver models, every problem at once, each naming the group,
// the volume or task, and the field (Nomad's structs/volumes.go and the
// csi_plugin check of structs.go, read in ../../../../shared/NOMAD-CLIENT.md §1.4, §6).
func Validate(job *api.Job) error {
	var errs []error
	jobType := deref(job.Type)
	for _, tg := range job.TaskGroups {
		group := fmt.Sprintf("group %q", deref(tg.Name))
		count := 1
		if tg.Count != nil {
			count = *tg.Count
		}
		canaries := tg.Update != nil && tg.Update.Canary != nil && *tg.Update.Canary > 0
		for _, name := range slices.Sorted(maps.Keys(tg.Volumes)) {
			for _, err := range volumeProblems(tg.Volumes[name], jobType, count, canaries) {
				errs = append(errs, fmt.Errorf("%s: volume %q: %w", group, name, err))
			}
		}
		for _, t := range tg.Tasks {
			task := fmt.Sprintf("%s: task %q", group, t.Name)
			for i, vm := range t.VolumeMounts {
				if _, ok := tg.Volumes[deref(vm.Volume)]; !ok {
					errs = append(errs, fmt.Errorf("%s: volume_mount[%d] refers to volume %q, which the group does not declare", task, i, deref(vm.Volume)))
				}
				if deref(vm.Destination) == "" {
					errs = append(errs, fmt.Errorf("%s: volume_mount[%d]: destination is required", task, i))
				}
			}
			if p := t.CSIPluginConfig; p != nil {
				for _, err := range pluginProblems(p) {
					errs = append(errs, fmt.Errorf("%s: csi_plugin: %w", task, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

func volumeProblems(v *api.VolumeRequest, jobType string, count int, canaries bool) []error {
	var errs []error
	if v.Source == "" {
		errs = append(errs, errors.New("source is required"))
	}
	switch v.Type {
	case api.CSIVolumeTypeCSI:
	case api.CSIVolumeTypeHost:
		return errs // host volumes: not the CSI client's
	default:
		return append(errs, fmt.Errorf("type %q: must be csi or host", v.Type))
	}
	access, attachment := api.CSIVolumeAccessMode(v.AccessMode), api.CSIVolumeAttachmentMode(v.AttachmentMode)
	switch {
	case v.AccessMode == "":
		errs = append(errs, errors.New("access_mode is required for CSI volumes"))
	case !slices.Contains(nomadvolume.AccessModes, access):
		errs = append(errs, fmt.Errorf("access_mode %q: must be one of %v", v.AccessMode, nomadvolume.AccessModes))
	}
	switch {
	case v.AttachmentMode == "":
		errs = append(errs, errors.New("attachment_mode is required for CSI volumes"))
	case !slices.Contains(nomadvolume.AttachmentModes, attachment):
		errs = append(errs, fmt.Errorf("attachment_mode %q: must be one of %v", v.AttachmentMode, nomadvolume.AttachmentModes))
	}
	if v.MountOptions != nil && attachment == api.CSIVolumeAttachmentModeBlockDevice {
		errs = append(errs, errors.New("mount_options are not allowed with attachment_mode block-device"))
	}
	if nomadvolume.ReaderOnly(access) && !v.ReadOnly {
		errs = append(errs, fmt.Errorf("access_mode %s requires read_only = true", access))
	}
	if count > 1 && !v.PerAlloc {
		switch {
		case access == api.CSIVolumeAccessModeSingleNodeReader || access == api.CSIVolumeAccessModeSingleNodeWriter:
			errs = append(errs, fmt.Errorf("access_mode %s allows one reader or writer, and the group has count = %d: use per_alloc or a multi-node mode", access, count))
		case access == api.CSIVolumeAccessModeMultiNodeSingleWriter && !v.ReadOnly:
			errs = append(errs, fmt.Errorf("access_mode %s allows one writer, and the group has count = %d", access, count))
		}
	}
	if v.PerAlloc {
		if jobType == api.JobTypeSystem || jobType == api.JobTypeSysbatch {
			errs = append(errs, fmt.Errorf("per_alloc is not allowed in %s jobs", jobType))
		}
		if canaries {
			errs = append(errs, errors.New("per_alloc is not allowed with canary deployments"))
		}
		if v.Sticky {
			errs = append(errs, errors.New("per_alloc and sticky cannot be used together"))
		}
	}
	return errs
}

var pluginTypes = []api.CSIPluginType{api.CSIPluginTypeNode, api.CSIPluginTypeController, api.CSIPluginTypeMonolith}

func pluginProblems(p *api.TaskCSIPluginConfig) []error {
	var errs []error
	if p.ID == "" {
		errs = append(errs, errors.New("id is required"))
	}
	if !slices.Contains(pluginTypes, p.Type) {
		errs = append(errs, fmt.Errorf("type %q: must be one of %v", p.Type, pluginTypes))
	}
	// The plugin's stop removes the socket directory recursively: staged
	// volumes under it would go with it (Nomad issue 19440).
	if within(p.StagePublishBaseDir, p.MountDir) {
		errs = append(errs, fmt.Errorf("stage_publish_base_dir %q must not be under mount_dir %q", p.StagePublishBaseDir, p.MountDir))
	}
	if p.HealthTimeout < 0 {
		errs = append(errs, fmt.Errorf("health_timeout %s must not be negative", p.HealthTimeout))
	}
	return errs
}

// within reports whether dir is base or below it.
func within(dir, base string) bool {
	rel, err := filepath.Rel(filepath.Clean(base), filepath.Clean(dir))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
