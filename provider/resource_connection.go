package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

var (
	_ resource.Resource                = (*connectionResource)(nil)
	_ resource.ResourceWithConfigure   = (*connectionResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*connectionResource)(nil)
	_ resource.ResourceWithImportState = (*connectionResource)(nil)
)

// connectionResource is a logical resource: it declares a namespace to
// attach and computes what Nomad and the node need. Nothing is connected
// from the machine running Terraform; the CSI plugin connects on the node.
type connectionResource struct {
	data *providerData
}

// NewConnectionResource returns the nvme_connection resource.
func NewConnectionResource() resource.Resource {
	return &connectionResource{data: &providerData{}}
}

func (r *connectionResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_connection"
}

func (r *connectionResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	data, err := providerDataFrom(req.ProviderData)
	if err != nil {
		resp.Diagnostics.AddError("Provider misconfigured", err.Error())
		return
	}
	r.data = data
}

func (r *connectionResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = connectionSchema()
}

func connectionSchema() schema.Schema {
	// Changes to the identity attributes (identityKeys) replace the
	// resource: ModifyPlan decides it (replacedIdentity), because plan
	// modifiers cost a conversion of the whole plan per attribute.
	optionalString := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Optional: true, MarkdownDescription: desc}
	}
	optionalInt := func(desc string) schema.Int64Attribute {
		return schema.Int64Attribute{Optional: true, MarkdownDescription: desc}
	}
	// Optional and computed: the value is the resource's own, else the
	// provider's default, else the plugin's; the plan shows which.
	inheritedInt := func(desc string) schema.Int64Attribute {
		return schema.Int64Attribute{Optional: true, Computed: true, MarkdownDescription: desc + " " + inheritedNote}
	}
	flag := func(desc string) schema.BoolAttribute {
		return schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(false), MarkdownDescription: desc}
	}
	return schema.Schema{
		MarkdownDescription: connectionDescription,
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed: true,
				MarkdownDescription: "The connection's identity in the import id format: `transport`, `traddr`, `trsvcid`, " +
					"`nqn` and the namespace selector as `key=value` pairs joined by commas.",
			},
			nvme.KeyTransport: schema.StringAttribute{
				Optional: true, Computed: true, Default: stringdefault.StaticString(nvme.TransportTCP),
				MarkdownDescription: transportDescription + " " + replaceNote,
			},
			nvme.KeyTrAddr: schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "Address of the target: an IPv4 or IPv6 address, or a host name the node resolves. " + replaceNote,
			},
			nvme.KeyTrSvcID: schema.StringAttribute{
				Optional: true, Computed: true, Default: stringdefault.StaticString(nvme.DefaultTrSvcID),
				MarkdownDescription: fmt.Sprintf("Port of the target, in decimal. Defaults to `%s` (always passed explicitly: the kernel's own default for tcp is the discovery port 8009). %s",
					nvme.DefaultTrSvcID, replaceNote),
			},
			attrSubsystemNQN: schema.StringAttribute{
				Required: true,
				MarkdownDescription: fmt.Sprintf("NQN of the subsystem, at most %d bytes (volume-context key `nqn`). %s",
					nvme.MaxNQNLength, replaceNote),
			},
			nvme.KeyNSID: schema.Int64Attribute{
				Optional: true,
				MarkdownDescription: fmt.Sprintf("Namespace ID, 1 to %d. At least one of `nsid`, `namespace_uuid` and `namespace_nguid` is required; "+
					"with `nsid`, the others verify the namespace found, so a renumbered target never hands over another volume. %s",
					uint32(nvme.MaxNSID), replaceNote),
			},
			attrNamespaceUUID: optionalString("Namespace UUID, 8-4-4-4-12 hexadecimal digits (volume-context key `uuid`; " +
				"rendered in lower case). " + replaceNote),
			attrNamespaceNGUID: optionalString("Namespace NGUID, 32 hexadecimal digits, dashes allowed (volume-context key `nguid`; " +
				"rendered in lower case without dashes). " + replaceNote),
			nvme.KeyHostTrAddr: optionalString("Local address the connection leaves from. Updated in place."),
			nvme.KeyHostIface:  optionalString("Local interface the connection leaves from. Updated in place."),

			nvme.KeyCtrlLossTmo:    inheritedInt(ctrlLossTmoDescription),
			nvme.KeyReconnectDelay: inheritedInt(reconnectDelayDescription),
			nvme.KeyKeepAliveTmo:   inheritedInt(keepAliveTmoDescription),
			nvme.KeyFastIOFailTmo:  inheritedInt(fastIOFailTmoDescription),
			nvme.KeyNrIOQueues: optionalInt(fmt.Sprintf("Number of I/O queues, 1 to %d (the kernel caps it at the CPU count). Unset leaves the kernel's default. Updated in place.",
				nvme.MaxNrIOQueues)),
			nvme.KeyQueueSize: optionalInt(fmt.Sprintf("Queue depth, %d to %d. Unset leaves the kernel's default. Updated in place.",
				nvme.MinQueueSize, nvme.MaxQueueSize)),
			nvme.KeyTOS: optionalInt(fmt.Sprintf("IP type of service, 0 to %d. Unset leaves the kernel's default. Updated in place.",
				nvme.MaxTOS)),
			nvme.KeyHdrDigest:  flag("Header digest (CRC32C over PDU headers). Defaults to `false`. Updated in place."),
			nvme.KeyDataDigest: flag("Data digest (CRC32C over PDU data). Defaults to `false`. Updated in place."),

			"volume_context": schema.MapAttribute{
				Computed: true, ElementType: types.StringType,
				MarkdownDescription: "The volume context for Nomad's volume `context`: exactly the canonical keys the `nvmeof-csi` " +
					"plugin parses, with the plugin's defaults for `transport`, `trsvcid`, `ctrl_loss_tmo` and `reconnect_delay` " +
					"written out. Known at plan time.",
			},
			"external_id": schema.StringAttribute{
				Computed: true,
				MarkdownDescription: "A stable name of the namespace for Nomad's `external_id`: the subsystem NQN and its " +
					"strongest identity (`uuid:`, else `nguid:`, else `nsid:`), independent of the address it is reached by. Known at plan time.",
			},
			"fabrics_options": schema.StringAttribute{
				Computed: true,
				MarkdownDescription: "The option string the plugin writes to `/dev/nvme-fabrics`, for review and debugging. " +
					"Null when the provider has no `host_nqn`/`host_id` (the string always carries the host identity) or when " +
					"`traddr` is a host name (the kernel takes addresses only; the node resolves the name).",
			},
			"connect_args": schema.ListAttribute{
				Computed: true, ElementType: types.StringType,
				MarkdownDescription: "The same connection as `nvme connect` arguments. Null whenever `fabrics_options` is, and " +
					"when `ctrl_loss_tmo` or `fast_io_fail_tmo` is `0`, which nvme-cli cannot pass (it leaves out options that are 0).",
			},
		},
	}
}

const (
	replaceNote   = "Changing it replaces the resource."
	inheritedNote = "When unset here, the provider's `defaults` block applies if it sets a value. Updated in place."

	connectionDescription = "Declares one NVMe/TCP namespace for the `nvmeof-csi` plugin and computes, at plan time, the " +
		"volume context and external id to register it with Nomad. Nothing is connected from the machine running " +
		"Terraform: the plugin connects on the node that stages the volume.\n\n" +
		"Every value is checked with the plugin's own rules and messages, so a plan that succeeds yields a volume " +
		"context the plugin accepts. Changing the target or the namespace replaces the resource; reconnection " +
		"parameters are updated in place."
)

func (r *connectionResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	// Everything was computed in the plan; the state is the plan.
	var plan connectionModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	tflog.Debug(ctx, "declare NVMe connection", map[string]any{"id": plan.ID.ValueString()})
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *connectionResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	// There is no remote object to refresh from: the state is the truth.
	var state connectionModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *connectionResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan connectionModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	tflog.Debug(ctx, "update NVMe connection", map[string]any{"id": plan.ID.ValueString()})
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *connectionResource) Delete(ctx context.Context, _ resource.DeleteRequest, _ *resource.DeleteResponse) {
	// Removing the state is all there is: the plugin disconnects on the
	// node when Nomad unstages the volume.
	tflog.Debug(ctx, "forget NVMe connection")
}

// ImportState reads the id as a volume context written key=value,... (see
// parseImportID): it is parsed by the core exactly as the plugin parses a
// volume context, so what it leaves out takes the plugin's defaults, not
// the provider's defaults block.
func (r *connectionResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	vc, err := parseImportID(req.ID)
	if err != nil {
		resp.Diagnostics.AddError("Invalid import id", err.Error())
		return
	}
	vol, err := nvme.ParseVolumeContext(vc)
	if err != nil {
		resp.Diagnostics.AddError("Invalid import id", err.Error())
		return
	}
	var m connectionModel
	m.setInputs(vol)
	resp.Diagnostics.Append(m.setOutputs(vol, r.data.host)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
