package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"
)

var (
	_ resource.Resource                = (*connectionResource)(nil)
	_ resource.ResourceWithConfigure   = (*connectionResource)(nil)
	_ resource.ResourceWithImportState = (*connectionResource)(nil)
)

// connectionResource is a logical resource: it declares the connection to
// one subsystem and its namespaces, and computes what Nomad and the node
// need. Nothing is connected from the machine running Terraform; the CSI
// plugin connects on the node.
//
// Its validation, planning and refresh are answered by server, below the
// framework (validateConnection, planConnection); the framework serves its
// schema, apply and import.
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

// connectionSchema is built from the settings tables. It has no plan
// modifiers, defaults or validators: planConnection and validateConnection
// do that work, and the framework never plans this resource.
func connectionSchema() schema.Schema {
	attrs := make(map[string]schema.Attribute, len(connectionSettings)+7)
	for _, s := range connectionSettings {
		attrs[s.attribute()] = s.schemaAttribute(changeNote(s))
	}
	nested := make(map[string]schema.Attribute, len(namespaceSettings))
	for _, s := range namespaceSettings {
		nested[s.attribute()] = s.schemaAttribute("")
	}
	attrs[attrNamespaces] = schema.MapNestedAttribute{
		Required:     true,
		NestedObject: schema.NestedAttributeObject{Attributes: nested},
		MarkdownDescription: "The namespaces of the subsystem that are volumes, by a name you choose (it keys `volume_contexts` " +
			"and `external_ids`, and usually becomes the Nomad volume's id; " + namespaceNameRule + "). At least one; each needs at least one " +
			"of `nsid`, `uuid` and `nguid`, and no two may select the same namespace. Adding, removing or changing a " +
			"namespace updates the connection in place.",
	}
	attrs[attrAdditionalPortals] = portalsSchema()
	attrs[attrID] = schema.StringAttribute{
		Computed: true,
		MarkdownDescription: "The connection's identity: `transport`, `traddr`, `trsvcid` and `nqn` as `key=value` pairs joined " +
			"by commas, the first part of an import id.",
	}
	attrs[attrVolumeContexts] = schema.MapAttribute{
		Computed: true, ElementType: types.MapType{ElemType: types.StringType},
		MarkdownDescription: "The volume context of each namespace, by name, for Nomad's volume `context`: exactly the canonical " +
			"keys the `nvmeof-csi` plugin parses, with the connection's settings and the plugin's defaults for `transport`, " +
			"`trsvcid`, `ctrl_loss_tmo` and `reconnect_delay` written out. Known at plan time; its names are known whenever " +
			"the namespaces map is, so it can drive `for_each`.",
	}
	attrs[attrExternalIDs] = schema.MapAttribute{
		Computed: true, ElementType: types.StringType,
		MarkdownDescription: "A stable name of each namespace, by name, for Nomad's `external_id`: the subsystem NQN and the " +
			"namespace's strongest identity (`uuid:`, else `nguid:`, else `nsid:`), independent of the address it is reached by. " +
			"Known at plan time.",
	}
	attrs[attrFabricsOptions] = schema.StringAttribute{
		Computed: true,
		MarkdownDescription: "The option string the plugin writes to `/dev/nvme-fabrics` for this connection, for review and " +
			"debugging. Null when the provider has no `host_nqn`/`host_id` (the string always carries the host identity) or " +
			"when `traddr` is a host name (the kernel takes addresses only; the node resolves the name).",
	}
	attrs[attrConnectArgs] = schema.ListAttribute{
		Computed: true, ElementType: types.StringType,
		MarkdownDescription: "The same connection as `nvme connect` arguments. Null whenever `fabrics_options` is, and when " +
			"`ctrl_loss_tmo` or `fast_io_fail_tmo` is `0`, which nvme-cli cannot pass (it leaves out options that are 0).",
	}
	return schema.Schema{
		MarkdownDescription: connectionDescription,
		Attributes:          attrs,
	}
}

// changeNote says what a change of s does to the resource.
func changeNote(s setting) string {
	switch {
	case s.replaces:
		return replaceNote
	case s.inherited:
		return inheritedNote
	default:
		return "Updated in place."
	}
}

const (
	replaceNote   = "Changing it replaces the resource."
	inheritedNote = "When unset here, the provider's `defaults` block applies if it sets a value. Updated in place."

	connectionDescription = "Declares the connection to one NVMe/TCP subsystem and the namespaces of it that are volumes, " +
		"and computes, at plan time, the volume context and external id of each to register it with Nomad. Nothing is " +
		"connected from the machine running Terraform: the `nvmeof-csi` plugin connects on the node that stages a volume.\n\n" +
		"One `nvme_connection` per subsystem: the kernel keeps one controller per host and subsystem, with one set of " +
		"connection settings, so they are declared once, here, for all its namespaces. Two `nvme_connection` resources " +
		"for the same subsystem (transport, address, port and NQN) are an error at plan time.\n\n" +
		"Every value is checked with the plugin's own rules and messages, at `terraform validate` for what is known then " +
		"and at plan time for the rest, so a plan that succeeds yields volume contexts the plugin accepts. Changing the " +
		"target replaces the resource; namespaces and connection settings are updated in place."
)

func (r *connectionResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	// Everything was computed in the plan; the state is the plan.
	tflog.Debug(ctx, "declare NVMe connection")
	resp.State.Raw = req.Plan.Raw
}

func (r *connectionResource) Read(context.Context, resource.ReadRequest, *resource.ReadResponse) {
	// Answered by server.ReadResource: the state is the truth.
}

func (r *connectionResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	tflog.Debug(ctx, "update NVMe connection")
	resp.State.Raw = req.Plan.Raw
	// The claim token only lives for one plan; it has no business in the
	// state.
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, claimPrivateKey, nil)...)
}

func (r *connectionResource) Delete(ctx context.Context, _ resource.DeleteRequest, _ *resource.DeleteResponse) {
	// Removing the state is all there is: the plugin disconnects on the
	// node when Nomad unstages the volumes.
	tflog.Debug(ctx, "forget NVMe connection")
}

// errNotObject is returned when Terraform hands over something other than
// an nvme_connection object, which would be a bug on either side.
func errNotObject(what string, err error) error {
	return fmt.Errorf("read the %s as an nvme_connection object: %w", what, err)
}
