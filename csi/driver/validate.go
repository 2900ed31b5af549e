package driver

import (
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// StageProblems runs the checks NodeStageVolume makes on its arguments
// before it touches the node, and returns every problem they find, each
// as the status error the RPC would answer. Operators use it (through
// `nvmeof-csi validate`) to learn before registering a volume what a claim
// would be refused for: the same rules and the same words as the plugin.
// NodeStageVolume stops at the first problem; this reports them all.
func StageProblems(req *csi.NodeStageVolumeRequest) []error {
	_, errs := checkStageArgs(req)
	return asStatuses(errs, fmt.Sprintf("stage volume %s at %s", req.GetVolumeId(), req.GetStagingTargetPath()))
}

// PublishProblems is StageProblems for NodePublishVolume.
func PublishProblems(req *csi.NodePublishVolumeRequest) []error {
	_, errs := checkPublishArgs(req)
	return asStatuses(errs, fmt.Sprintf("publish volume %s at %s", req.GetVolumeId(), req.GetTargetPath()))
}

// stageArgs are NodeStageVolume's arguments, checked.
type stageArgs struct {
	id, staging string
	mode        volumeMode
	vol         nvme.Volume
	auth        nvme.Auth
}

// checkStageArgs checks NodeStageVolume's arguments, all of them: the
// handler answers the first problem, StageProblems lists them all.
func checkStageArgs(req *csi.NodeStageVolumeRequest) (stageArgs, []error) {
	a := stageArgs{id: req.GetVolumeId(), staging: req.GetStagingTargetPath()}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(requireArgs("volume_id", a.id, "staging_target_path", a.staging))
	mode, err := parseCapability(req.GetVolumeCapability())
	if err != nil {
		add(invalid("%v", err))
	} else if mode.block && mode.readOnly {
		add(invalid("%s", readOnlyBlockRefusal))
	}
	a.mode = mode
	if a.vol, err = nvme.ParseVolumeContext(req.GetVolumeContext()); err != nil {
		add(fmt.Errorf("volume_context: %w", err))
	}
	if a.auth, err = nvme.ParseSecrets(req.GetSecrets()); err != nil {
		add(fmt.Errorf("secrets: %w", err))
	}
	return a, errs
}

// publishArgs are NodePublishVolume's arguments, checked.
type publishArgs struct {
	id, staging, target string
	mode                volumeMode
	readOnly            bool
}

// checkPublishArgs is checkStageArgs for NodePublishVolume.
func checkPublishArgs(req *csi.NodePublishVolumeRequest) (publishArgs, []error) {
	a := publishArgs{id: req.GetVolumeId(), staging: req.GetStagingTargetPath(), target: req.GetTargetPath()}
	var errs []error
	if err := requireArgs("volume_id", a.id, "staging_target_path", a.staging, "target_path", a.target); err != nil {
		errs = append(errs, err)
	}
	mode, err := parseCapability(req.GetVolumeCapability())
	if err != nil {
		return a, append(errs, invalid("%v", err))
	}
	a.mode, a.readOnly = mode, req.GetReadonly() || mode.readOnly
	if mode.block && a.readOnly {
		errs = append(errs, invalid("%s", readOnlyBlockRefusal))
	}
	return a, errs
}

// readOnlyBlockRefusal answers a read-only block stage or publish: the
// kernel enforces a read-only mount on files and directories reached
// through it, never on a device node, whose writes go straight to the
// block device.
const readOnlyBlockRefusal = "a read-only bind mount does not stop writes to a device node; read-only block volumes are not supported"

func asStatuses(errs []error, what string) []error {
	out := make([]error, 0, len(errs))
	for _, err := range errs {
		out = append(out, toStatus(err, what))
	}
	return out
}
