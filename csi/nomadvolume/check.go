package nomadvolume

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/agext/levenshtein"
	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/hashicorp/nomad/api"
	"google.golang.org/grpc/status"

	"github.com/nvmeof/nvmeof/csi/driver"
)

// Problem is one reason a volume would not work: refused at register,
// silently dropped by the CLI, or refused by the plugin when a job claims
// it.
type Problem struct {
	// Where names the field: "id", "context", "capability[1]", "key foo".
	Where string
	// What says what is wrong and what is allowed, in the words of the
	// component that would refuse it.
	What string
}

func (p Problem) String() string { return p.Where + ": " + p.What }

// Fields are the keys of a CSI volume spec, for suggestions.
var Fields = []string{
	"id", "name", "namespace", "type", "external_id", "plugin_id", "capability", "mount_options",
	"secrets", "parameters", "context", "topology_request", "capacity_min", "capacity_max",
	"clone_id", "snapshot_id",
}

// DefaultStagePublishBaseDir is csi_plugin's default plugin-side root,
// used to build the paths the checks put in requests.
const DefaultStagePublishBaseDir = "/local/csi"

// Check returns every problem of spec, in a stable order: what Nomad's CLI
// drops, what its server refuses at register, then what the plugin refuses
// in NodeStageVolume and NodePublishVolume for each capability, with the
// plugin's own rules and messages.
func Check(spec *Spec) []Problem {
	var out problems
	for _, k := range spec.Dropped {
		out.add("key "+k, droppedKey(k))
	}
	v := spec.Volume
	if v.ID == "" {
		out.add("id", "is required (nomad volume register refuses a volume without one)")
	}
	if v.PluginID == "" {
		out.add("plugin_id", "is required: the csi_plugin id of the nvmeof-csi job, e.g. \"nvmeof\"")
	}
	if len(v.RequestedCapabilities) == 0 {
		out.add("capability", "at least one capability block is required (access_mode and attachment_mode)")
	}
	if v.SnapshotID != "" && v.CloneID != "" {
		out.add("snapshot_id", "snapshot_id and clone_id cannot both be set")
	}
	if t := v.RequestedTopologies; t != nil {
		for _, top := range append(slices.Clone(t.Required), t.Preferred...) {
			if len(top.Segments) == 0 {
				out.add("topology_request", "a topology needs at least one segment")
			}
		}
		if len(t.Required) > 0 {
			out.add("topology_request.required", "nvmeof-csi reports no accessible_topology, so Nomad finds no node "+
				"for a volume with required topologies: remove topology_request")
		}
	}
	ns := v.Namespace
	if ns == "" {
		ns = "default"
	}
	for i, c := range v.RequestedCapabilities {
		where := fmt.Sprintf("capability[%d] %s/%s", i, c.AccessMode, c.AttachmentMode)
		capability, err := Capability(c.AccessMode, c.AttachmentMode, v.MountOptions)
		if err != nil {
			out.add(where, err.Error())
			continue
		}
		usage := Usage(ReaderOnly(c.AccessMode), c.AttachmentMode, c.AccessMode)
		staging := path.Join(DefaultStagePublishBaseDir, "staging", ns, v.ID, usage)
		target := path.Join(DefaultStagePublishBaseDir, "per-alloc", "ALLOC", v.ID, usage)
		for _, err := range driver.StageProblems(&csi.NodeStageVolumeRequest{
			VolumeId: RemoteID(v), StagingTargetPath: staging, VolumeCapability: capability,
			Secrets: v.Secrets, VolumeContext: v.Context,
		}) {
			out.add(stageWhere(PluginWords(err, "stage volume "+RemoteID(v)+" at "+staging), where))
		}
		// A reader-only mode makes Nomad require read_only, and read_only
		// reaches NodePublish.
		for _, err := range driver.PublishProblems(&csi.NodePublishVolumeRequest{
			VolumeId: RemoteID(v), StagingTargetPath: staging, TargetPath: target,
			VolumeCapability: capability, Readonly: ReaderOnly(c.AccessMode),
			Secrets: v.Secrets, VolumeContext: v.Context,
		}) {
			out.add(stageWhere(PluginWords(err, "publish volume "+RemoteID(v)+" at "+target), where))
		}
	}
	return out.list
}

// Notes lists what Nomad reads without a word and the plugin never uses;
// not problems, but worth knowing.
func Notes(spec *Spec) []string {
	notes := slices.Clone(spec.Ignored)
	v := spec.Volume
	if len(v.Parameters) > 0 {
		notes = append(notes, "parameters reach controller RPCs only; nvmeof-csi is a node plugin and never sees them")
	}
	if v.RequestedCapacityMin != 0 || v.RequestedCapacityMax != 0 {
		notes = append(notes, "capacity_min/capacity_max: a node-only plugin cannot create or expand a volume; "+
			"raising capacity_min on a registered volume fails")
	}
	if v.CloneID != "" || v.SnapshotID != "" {
		notes = append(notes, "clone_id/snapshot_id are for `nomad volume create`, which a node-only plugin cannot serve")
	}
	if t := v.RequestedTopologies; t != nil && len(t.Preferred) > 0 {
		notes = append(notes, "topology_request.preferred is ignored by `nomad volume register`")
	}
	if v.MountOptions != nil && !slices.ContainsFunc(v.RequestedCapabilities, func(c *api.CSIVolumeCapability) bool {
		return c.AttachmentMode == api.CSIVolumeAttachmentModeFilesystem
	}) {
		notes = append(notes, "mount_options apply to file-system attachments only; this volume has none")
	}
	return notes
}

// PluginWords is the plugin's message without the name of the operation
// and the paths it put first ("stage volume X at PATH: "): the paths in
// these checks are placeholders, the words after them are the point.
func PluginWords(err error, operation string) string {
	msg := status.Convert(err).Message()
	if rest, ok := strings.CutPrefix(msg, operation+": "); ok {
		return rest
	}
	return msg
}

// stageWhere names a stage problem: the plugin's messages about the
// context and the secrets start with the request field they are about,
// and are the volume's whatever the capability.
func stageWhere(msg, capability string) (where, what string) {
	for _, field := range []string{"volume_context", "secrets"} {
		if rest, ok := strings.CutPrefix(msg, field+": "); ok {
			return field, rest
		}
	}
	if strings.HasPrefix(msg, "volume_id ") {
		return "id", msg // Nomad sends the id when there is no external_id
	}
	return capability, msg
}

func droppedKey(k string) string {
	switch k {
	case "access_mode", "attachment_mode":
		return "a top-level " + k + " is dropped by nomad volume register; put it in a capability block"
	}
	msg := "is no field of a Nomad CSI volume: nomad volume register drops it without a word"
	best, bestDist := "", 3
	for _, f := range Fields {
		if d := levenshtein.Distance(strings.ToLower(k), f, nil); d < bestDist {
			best, bestDist = f, d
		}
	}
	if best != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", best)
	}
	return msg
}

// problems keeps the first of equal problems: a context error repeats for
// every capability.
type problems struct {
	list []Problem
}

func (p *problems) add(where, what string) {
	np := Problem{Where: where, What: what}
	if !slices.Contains(p.list, np) {
		p.list = append(p.list, np)
	}
}
