// Command noop serves a provider whose one resource, noop_thing, takes the
// inputs the benchmark gives nvme_connection (an address, an NQN and a map
// of namespaces) and does nothing else: no defaults, no plan modifiers, no
// ModifyPlan, no computed attributes. test/providerbench/plan.sh plans it
// beside nvme_connection and terraform_data to show what any out-of-process
// framework provider costs for the same configuration (plugin start, gRPC,
// msgpack, the framework's own walks), which no change to the nvme provider
// can remove. It is a bench tool, never shipped.
package main

import (
	"context"
	"log"
	"os"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"

	nvmeprovider "github.com/nvmeof/nvmeof/provider"
)

type noopProvider struct{}

func (noopProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "noop"
}

func (noopProvider) Schema(context.Context, provider.SchemaRequest, *provider.SchemaResponse) {}

func (noopProvider) Configure(context.Context, provider.ConfigureRequest, *provider.ConfigureResponse) {
}

func (noopProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{func() resource.Resource { return noopThing{} }}
}

func (noopProvider) DataSources(context.Context) []func() datasource.DataSource { return nil }

// noopThing stores its inputs as they are.
type noopThing struct{}

func (noopThing) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_thing"
}

func (noopThing) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{Attributes: map[string]schema.Attribute{
		"traddr":        schema.StringAttribute{Required: true},
		"subsystem_nqn": schema.StringAttribute{Optional: true},
		"namespaces": schema.MapNestedAttribute{Optional: true, NestedObject: schema.NestedAttributeObject{
			Attributes: map[string]schema.Attribute{"nsid": schema.Int64Attribute{Optional: true}},
		}},
	}}
}

func (noopThing) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	resp.State = tfsdk.State{Schema: req.Plan.Schema, Raw: req.Plan.Raw}
}

func (noopThing) Read(context.Context, resource.ReadRequest, *resource.ReadResponse) {}

func (noopThing) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	resp.State = tfsdk.State{Schema: req.Plan.Schema, Raw: req.Plan.Raw}
}

func (noopThing) Delete(context.Context, resource.DeleteRequest, *resource.DeleteResponse) {}

func main() {
	// As quiet as the nvme provider, so that only the resource differs.
	if err := nvmeprovider.QuietSDKLogs(os.LookupEnv, os.Setenv); err != nil {
		log.Fatal(err)
	}
	opts := providerserver.ServeOpts{Address: "registry.terraform.io/nvmeof/noop", ProtocolVersion: 6}
	if err := providerserver.Serve(context.Background(), func() provider.Provider { return noopProvider{} }, opts); err != nil {
		log.Fatal(err)
	}
}
