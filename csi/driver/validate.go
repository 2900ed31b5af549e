package driver

import (
	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// StageProblems runs the checks NodeStageVolume makes on its arguments
// before it touches the node, and returns every problem they find, each
// as the status error the RPC would answer. Operators use it (through
// `nvmeof-csi validate`) to learn before registering a volume what a claim
// would be refused for: the same rules and the same words as the plugin.
// NodeStageVolume stops at the first problem; this reports them all.
func StageProblems(req *csi.NodeStageVolumeRequest) []error {
	var problems []error
	if err := requireArgs("volume_id", req.GetVolumeId(), "staging_target_path", req.GetStagingTargetPath()); err != nil {
		problems = append(problems, err)
	}
	if _, err := parseCapability(req.GetVolumeCapability()); err != nil {
		problems = append(problems, status.Error(codes.InvalidArgument, err.Error()))
	}
	if _, err := nvme.ParseVolumeContext(req.GetVolumeContext()); err != nil {
		problems = append(problems, status.Error(codes.InvalidArgument, "volume_context: "+err.Error()))
	}
	if _, err := nvme.ParseSecrets(req.GetSecrets()); err != nil {
		problems = append(problems, status.Error(codes.InvalidArgument, "secrets: "+err.Error()))
	}
	return problems
}

// PublishProblems is StageProblems for NodePublishVolume.
func PublishProblems(req *csi.NodePublishVolumeRequest) []error {
	var problems []error
	switch {
	case req.GetVolumeId() == "":
		problems = append(problems, status.Error(codes.InvalidArgument, "volume_id is required"))
	case req.GetStagingTargetPath() == "":
		problems = append(problems, status.Error(codes.InvalidArgument, "staging_target_path is required: the plugin stages volumes"))
	case req.GetTargetPath() == "":
		problems = append(problems, status.Error(codes.InvalidArgument, "target_path is required"))
	}
	mode, err := parseCapability(req.GetVolumeCapability())
	if err != nil {
		return append(problems, status.Error(codes.InvalidArgument, err.Error()))
	}
	if mode.block && (req.GetReadonly() || mode.readOnly) {
		problems = append(problems, status.Error(codes.InvalidArgument, readOnlyBlockRefusal))
	}
	return problems
}

// readOnlyBlockRefusal is NodePublishVolume's answer to a read-only block
// publish (node_publish.go spells the same words).
const readOnlyBlockRefusal = "a read-only bind mount does not stop writes to a device node; read-only block volumes are not supported"
