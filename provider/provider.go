package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/function"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// Address is the provider's source address in the public registry.
const Address = "registry.terraform.io/nvmeof/nvme"

// TypeName prefixes every resource and function of this provider.
const TypeName = "nvme"

var (
	_ provider.Provider              = (*nvmeProvider)(nil)
	_ provider.ProviderWithFunctions = (*nvmeProvider)(nil)
)

type nvmeProvider struct {
	version string
}

// New returns a constructor of the provider, as providerserver expects.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &nvmeProvider{version: version} }
}

// providerModel is the provider block.
type providerModel struct {
	HostNQN  types.String       `tfsdk:"host_nqn"`
	HostID   types.String       `tfsdk:"host_id"`
	Defaults *reconnectDefaults `tfsdk:"defaults"`
}

// providerData is what Configure hands to the resource.
type providerData struct {
	defaults reconnectDefaults
	// host is nil when the provider block names no host identity: the
	// kernel option string and nvme-cli arguments cannot be rendered then.
	host *nvme.Host
}

func (p *nvmeProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = TypeName
	resp.Version = p.version
}

func (p *nvmeProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = providerSchema()
}

func providerSchema() schema.Schema {
	return schema.Schema{
		MarkdownDescription: "Declares NVMe/TCP namespaces for the `nvmeof-csi` plugin and renders the volume context " +
			"Nomad hands to it. The provider talks to no target and no host: every value is checked at plan time with " +
			"the same code and the same messages as the plugin.",
		Attributes: map[string]schema.Attribute{
			"host_nqn": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Host NQN of the initiator, as in `/etc/nvme/hostnqn` on the node. Only used to render " +
					"`fabrics_options` and `connect_args`; set it together with `host_id`. It is not read from this " +
					"machine's `/etc/nvme`, because Terraform does not run on the node that connects.",
			},
			"host_id": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Host ID of the initiator (a UUID), as in `/etc/nvme/hostid` on the node. Set it together with `host_nqn`.",
			},
		},
		Blocks: map[string]schema.Block{
			"defaults": schema.SingleNestedBlock{
				MarkdownDescription: "Reconnection policy for every `nvme_connection` that does not set its own value: one " +
					"place for a fleet's policy. Checked with the same rules as the resource attributes.",
				Attributes: map[string]schema.Attribute{
					nvme.KeyCtrlLossTmo:    schema.Int64Attribute{Optional: true, MarkdownDescription: ctrlLossTmoDescription},
					nvme.KeyReconnectDelay: schema.Int64Attribute{Optional: true, MarkdownDescription: reconnectDelayDescription},
					nvme.KeyKeepAliveTmo:   schema.Int64Attribute{Optional: true, MarkdownDescription: keepAliveTmoDescription},
					nvme.KeyFastIOFailTmo:  schema.Int64Attribute{Optional: true, MarkdownDescription: fastIOFailTmoDescription},
				},
			},
		},
	}
}

func (p *nvmeProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	data := &providerData{}
	if cfg.Defaults != nil {
		data.defaults = *cfg.Defaults
		resp.Diagnostics.Append(data.defaults.validate()...)
	}
	host, diags := hostFromConfig(cfg)
	resp.Diagnostics.Append(diags...)
	data.host = host
	if resp.Diagnostics.HasError() {
		return
	}
	resp.ResourceData = data
}

// hostFromConfig returns the configured host identity, or nil when none is
// configured or it is not known yet.
func hostFromConfig(cfg providerModel) (*nvme.Host, diag.Diagnostics) {
	if cfg.HostNQN.IsUnknown() || cfg.HostID.IsUnknown() || (cfg.HostNQN.IsNull() && cfg.HostID.IsNull()) {
		return nil, nil
	}
	h := nvme.Host{NQN: cfg.HostNQN.ValueString(), ID: cfg.HostID.ValueString()}
	if err := h.Validate(); err != nil {
		r := fieldReporter{pathOf: func(key string) path.Path { return path.Root(attributeForKey(key)) }}
		return nil, r.report(err)
	}
	return &h, nil
}

func (p *nvmeProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{NewConnectionResource}
}

func (p *nvmeProvider) DataSources(context.Context) []func() datasource.DataSource { return nil }

func (p *nvmeProvider) Functions(context.Context) []func() function.Function {
	return []func() function.Function{NewVolumeContextFunction}
}

// providerDataFrom unpacks what Configure handed over. Before Configure ran
// (validation), there is nothing and the zero value applies.
func providerDataFrom(v any) (*providerData, error) {
	switch d := v.(type) {
	case nil:
		return &providerData{}, nil
	case *providerData:
		return d, nil
	default:
		return nil, fmt.Errorf("unexpected provider data %T: expected *providerData", v)
	}
}
