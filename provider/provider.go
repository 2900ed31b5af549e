package provider

import (
	"context"
	"fmt"
	"sync"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/function"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// Address is the provider's source address in the public registry.
const Address = "registry.terraform.io/nvmeof/nvme"

// TypeName prefixes every resource and function of this provider.
const TypeName = "nvme"

var (
	_ provider.Provider                   = (*nvmeProvider)(nil)
	_ provider.ProviderWithFunctions      = (*nvmeProvider)(nil)
	_ provider.ProviderWithValidateConfig = (*nvmeProvider)(nil)
)

type nvmeProvider struct {
	version string

	// data is what the last Configure made, for the protocol server's own
	// answers (server); resources get it through the framework.
	mu   sync.Mutex
	data *providerData
}

// current returns what the last Configure made; before any, nothing is
// configured: no defaults, no host, no registry.
func (p *nvmeProvider) current() *providerData {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.data == nil {
		return &providerData{}
	}
	return p.data
}

// providerData is what Configure hands to the resources. Terraform
// configures a provider instance once per walk (plan, apply), so it also
// scopes what one plan has seen (registry).
type providerData struct {
	// defaults are the provider's defaults block by volume-context key.
	defaults map[string]tftypes.Value
	// host is nil when the provider block names no host identity: the
	// kernel option string and nvme-cli arguments cannot be rendered then.
	host *nvme.Host
	// registry is nil before Configure ran (validation).
	registry *subsystemRegistry
}

func (p *nvmeProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = TypeName
	resp.Version = p.version
}

func (p *nvmeProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = providerSchema()
}

const (
	attrHostNQN  = "host_nqn"
	attrHostID   = "host_id"
	attrDefaults = "defaults"
)

func providerSchema() schema.Schema {
	defaults := make(map[string]schema.Attribute)
	for _, s := range connectionSettings {
		if s.inherited {
			defaults[s.attribute()] = schema.Int64Attribute{Optional: true, MarkdownDescription: s.description}
		}
	}
	return schema.Schema{
		MarkdownDescription: "Declares NVMe/TCP subsystems and their namespaces for the `nvmeof-csi` plugin and renders the " +
			"volume contexts Nomad hands to it. The provider talks to no target and no host: every value is checked at " +
			"`terraform validate` and plan time with the same code and the same messages as the plugin.",
		Attributes: map[string]schema.Attribute{
			attrHostNQN: schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Host NQN of the initiator, as in `/etc/nvme/hostnqn` on the node. Only used to render " +
					"`fabrics_options` and `connect_args`; set it together with `host_id`. It is not read from this " +
					"machine's `/etc/nvme`, because Terraform does not run on the node that connects.",
			},
			attrHostID: schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Host ID of the initiator (a UUID), as in `/etc/nvme/hostid` on the node. Set it together with `host_nqn`.",
			},
		},
		Blocks: map[string]schema.Block{
			attrDefaults: schema.SingleNestedBlock{
				MarkdownDescription: "Reconnection policy for every `nvme_connection` that does not set its own value: one " +
					"place for a fleet's policy. Checked with the same rules as the resource attributes.",
				Attributes: defaults,
			},
		},
	}
}

// ValidateConfig checks the known values of the provider block, so that
// `terraform validate` refuses a bad default or host identity already.
func (p *nvmeProvider) ValidateConfig(_ context.Context, req provider.ValidateConfigRequest, resp *provider.ValidateConfigResponse) {
	_, _, diags := readProviderConfig(req.Config.Raw)
	resp.Diagnostics.Append(diags...)
}

func (p *nvmeProvider) Configure(_ context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	defaults, host, diags := readProviderConfig(req.Config.Raw)
	resp.Diagnostics.Append(diags...)
	data := &providerData{defaults: defaults, host: host}
	registry, err := newSubsystemRegistry()
	if err != nil {
		resp.Diagnostics.AddError("Cannot configure the provider", err.Error())
	}
	data.registry = registry
	if resp.Diagnostics.HasError() {
		return
	}
	p.mu.Lock()
	p.data = data
	p.mu.Unlock()
	resp.ResourceData = data
}

// readProviderConfig reads and checks the provider block: the defaults by
// volume-context key, and the host identity.
func readProviderConfig(raw tftypes.Value) (map[string]tftypes.Value, *nvme.Host, diag.Diagnostics) {
	var diags diag.Diagnostics
	defaults := make(map[string]tftypes.Value)
	var attrs map[string]tftypes.Value
	if err := raw.As(&attrs); err != nil {
		diags.AddError("Cannot read the provider configuration", err.Error())
		return defaults, nil, diags
	}
	if block := attrs[attrDefaults]; block.IsKnown() && !block.IsNull() {
		var values map[string]tftypes.Value
		if err := block.As(&values); err != nil {
			diags.AddError("Cannot read the provider configuration", fmt.Sprintf("read %s: %v", attrDefaults, err))
			return defaults, nil, diags
		}
		for _, s := range connectionSettings {
			if v, ok := values[s.attribute()]; s.inherited && ok {
				defaults[s.key] = v
			}
		}
		d, err := validateDefaults(defaults)
		if err != nil {
			diags.AddError("Cannot read the provider configuration", err.Error())
			return defaults, nil, diags
		}
		diags.Append(d...)
	}
	host, d := hostFromConfig(attrs[attrHostNQN], attrs[attrHostID])
	diags.Append(d...)
	return defaults, host, diags
}

// hostFromConfig returns the configured host identity, or nil when none is
// configured or it is not known yet.
func hostFromConfig(nqn, id tftypes.Value) (*nvme.Host, diag.Diagnostics) {
	if !nqn.IsKnown() || !id.IsKnown() || (nqn.IsNull() && id.IsNull()) {
		return nil, nil
	}
	var h nvme.Host
	if !nqn.IsNull() {
		_ = nqn.As(&h.NQN) // a string by the schema
	}
	if !id.IsNull() {
		_ = id.As(&h.ID)
	}
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
