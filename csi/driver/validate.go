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
	var p problems
	p.what = fmt.Sprintf("stage volume %s at %s", req.GetVolumeId(), req.GetStagingTargetPath())
	p.add(requireArgs("volume_id", req.GetVolumeId(), "staging_target_path", req.GetStagingTargetPath()))
	if _, err := parseCapability(req.GetVolumeCapability()); err != nil {
		p.add(invalid("%v", err))
	}
	if _, err := nvme.ParseVolumeContext(req.GetVolumeContext()); err != nil {
		p.add(fmt.Errorf("volume_context: %w", err))
	}
	if _, err := nvme.ParseSecrets(req.GetSecrets()); err != nil {
		p.add(fmt.Errorf("secrets: %w", err))
	}
	return p.list
}

// PublishProblems is StageProblems for NodePublishVolume.
func PublishProblems(req *csi.NodePublishVolumeRequest) []error {
	var p problems
	p.what = fmt.Sprintf("publish volume %s at %s", req.GetVolumeId(), req.GetTargetPath())
	p.add(requireArgs("volume_id", req.GetVolumeId(), "staging_target_path", req.GetStagingTargetPath(), "target_path", req.GetTargetPath()))
	mode, err := parseCapability(req.GetVolumeCapability())
	if err != nil {
		p.add(invalid("%v", err))
		return p.list
	}
	if mode.block && (req.GetReadonly() || mode.readOnly) {
		p.add(invalid("%s", readOnlyBlockRefusal))
	}
	return p.list
}

// readOnlyBlockRefusal is NodePublishVolume's answer to a read-only block
// publish (node_publish.go spells the same words; validate_test.go holds
// the two together).
const readOnlyBlockRefusal = "a read-only bind mount does not stop writes to a device node; read-only block volumes are not supported"

type problems struct {
	what string
	list []error
}

func (p *problems) add(err error) {
	if err != nil {
		p.list = append(p.list, toStatus(err, p.what))
	}
}
