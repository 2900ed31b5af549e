package provider

import (
	"context"
	"slices"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// planHarness drives the provider the way terraform does over gRPC, minus
// the wire: the same server, schema and requests, so what a plan costs in
// the provider is measurable without terraform.
type planHarness struct {
	server       tfprotov6.ProviderServer
	resourceType tftypes.Object
}

// newPlanHarness serves the provider and configures it with a provider
// block given as attribute values (host_nqn, host_id, defaults).
func newPlanHarness(tb testing.TB, providerBlock map[string]tftypes.Value) *planHarness {
	tb.Helper()
	ctx := context.Background()
	server, err := providerserver.NewProtocol6WithError(New("bench")())()
	if err != nil {
		tb.Fatal(err)
	}
	schemas, err := server.GetProviderSchema(ctx, &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		tb.Fatal(err)
	}
	providerType, ok := schemas.Provider.ValueType().(tftypes.Object)
	if !ok {
		tb.Fatalf("provider schema type is %T", schemas.Provider.ValueType())
	}
	resourceType, ok := schemas.ResourceSchemas[TypeName+"_connection"].ValueType().(tftypes.Object)
	if !ok {
		tb.Fatal("no object type for nvme_connection")
	}
	cfg := dynamicValue(tb, objectValue(providerType, providerBlock))
	resp, err := server.ConfigureProvider(ctx, &tfprotov6.ConfigureProviderRequest{TerraformVersion: "1.11.4", Config: &cfg})
	if err != nil {
		tb.Fatal(err)
	}
	for _, d := range resp.Diagnostics {
		tb.Fatalf("configure: %s: %s", d.Summary, d.Detail)
	}
	return &planHarness{server: server, resourceType: resourceType}
}

// objectValue is an object of type t with the given attributes and every
// other attribute null, as terraform decodes a configuration.
func objectValue(t tftypes.Object, attrs map[string]tftypes.Value) tftypes.Value {
	vals := make(map[string]tftypes.Value, len(t.AttributeTypes))
	for name, typ := range t.AttributeTypes {
		vals[name] = tftypes.NewValue(typ, nil)
		if v, ok := attrs[name]; ok {
			vals[name] = v
		}
	}
	return tftypes.NewValue(t, vals)
}

func dynamicValue(tb testing.TB, v tftypes.Value) tfprotov6.DynamicValue {
	tb.Helper()
	dv, err := tfprotov6.NewDynamicValue(v.Type(), v)
	if err != nil {
		tb.Fatal(err)
	}
	return dv
}

// planRequest is what terraform sends to plan config over prior (a null
// prior is a create): for attributes the configuration leaves null the
// proposed new state keeps the prior value, as terraform's ProposedNew does
// for computed attributes.
func (h *planHarness) planRequest(tb testing.TB, prior, config tftypes.Value) *tfprotov6.PlanResourceChangeRequest {
	tb.Helper()
	proposed := config
	if !prior.IsNull() {
		var priorAttrs, configAttrs map[string]tftypes.Value
		if err := prior.As(&priorAttrs); err != nil {
			tb.Fatal(err)
		}
		if err := config.As(&configAttrs); err != nil {
			tb.Fatal(err)
		}
		merged := make(map[string]tftypes.Value, len(configAttrs))
		for name, v := range configAttrs {
			merged[name] = v
			if v.IsNull() {
				merged[name] = priorAttrs[name]
			}
		}
		proposed = tftypes.NewValue(h.resourceType, merged)
	}
	priorDV, configDV, proposedDV := dynamicValue(tb, prior), dynamicValue(tb, config), dynamicValue(tb, proposed)
	return &tfprotov6.PlanResourceChangeRequest{
		TypeName:         TypeName + "_connection",
		PriorState:       &priorDV,
		Config:           &configDV,
		ProposedNewState: &proposedDV,
	}
}

// plan runs one PlanResourceChange and returns the planned state.
func (h *planHarness) plan(tb testing.TB, req *tfprotov6.PlanResourceChangeRequest) (*tfprotov6.PlanResourceChangeResponse, tftypes.Value) {
	tb.Helper()
	resp, err := h.server.PlanResourceChange(context.Background(), req)
	if err != nil {
		tb.Fatal(err)
	}
	planned, err := resp.PlannedState.Unmarshal(h.resourceType)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, planned
}

// benchProviderBlock is provider/bench/plan.sh's provider block.
func benchProviderBlock() map[string]tftypes.Value {
	defaultsType := tftypes.Object{AttributeTypes: map[string]tftypes.Type{
		"ctrl_loss_tmo": tftypes.Number, "reconnect_delay": tftypes.Number,
		"keep_alive_tmo": tftypes.Number, "fast_io_fail_tmo": tftypes.Number,
	}}
	return map[string]tftypes.Value{
		"defaults": objectValue(defaultsType, map[string]tftypes.Value{
			"ctrl_loss_tmo":   tftypes.NewValue(tftypes.Number, 600),
			"reconnect_delay": tftypes.NewValue(tftypes.Number, 10),
		}),
	}
}

// benchConfig is one nvme_connection of provider/bench/plan.sh.
func (h *planHarness) benchConfig(nsid int) tftypes.Value {
	return objectValue(h.resourceType, map[string]tftypes.Value{
		"traddr":         tftypes.NewValue(tftypes.String, "192.0.2.10"),
		"subsystem_nqn":  tftypes.NewValue(tftypes.String, "nqn.2014-08.org.example:bench"),
		"nsid":           tftypes.NewValue(tftypes.Number, nsid),
		"keep_alive_tmo": tftypes.NewValue(tftypes.Number, 30),
	})
}

// BenchmarkPlanResourceChange is the provider's share of planning one
// nvme_connection of provider/bench/plan.sh: a create, and an in-place
// update of an existing one.
func BenchmarkPlanResourceChange(b *testing.B) {
	h := newPlanHarness(b, benchProviderBlock())
	config := h.benchConfig(1)
	create := h.planRequest(b, tftypes.NewValue(h.resourceType, nil), config)
	_, prior := h.plan(b, create)
	changed := objectValue(h.resourceType, map[string]tftypes.Value{
		"traddr":         tftypes.NewValue(tftypes.String, "192.0.2.10"),
		"subsystem_nqn":  tftypes.NewValue(tftypes.String, "nqn.2014-08.org.example:bench"),
		"nsid":           tftypes.NewValue(tftypes.Number, 1),
		"keep_alive_tmo": tftypes.NewValue(tftypes.Number, 60),
	})
	update := h.planRequest(b, prior, changed)
	for _, bc := range []struct {
		name string
		req  *tfprotov6.PlanResourceChangeRequest
	}{{"create", create}, {"update", update}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				resp, err := h.server.PlanResourceChange(context.Background(), bc.req)
				if err != nil || len(resp.Diagnostics) > 0 {
					b.Fatalf("plan: %v %v", err, resp.Diagnostics)
				}
			}
		})
	}
}

// TestPlanResourceChange_requiresReplace: a change to an identity attribute
// replaces the resource, any other change is made in place, and a create
// replaces nothing.
func TestPlanResourceChange_requiresReplace(t *testing.T) {
	h := newPlanHarness(t, nil)
	null := tftypes.NewValue(h.resourceType, nil)
	_, prior := h.plan(t, h.planRequest(t, null, h.benchConfig(1)))
	with := func(name string, v tftypes.Value) tftypes.Value {
		var attrs map[string]tftypes.Value
		if err := h.benchConfig(1).As(&attrs); err != nil {
			t.Fatal(err)
		}
		attrs[name] = v
		return tftypes.NewValue(h.resourceType, attrs)
	}
	tests := []struct {
		name          string
		prior, config tftypes.Value
		want          []string
	}{
		{"create", null, h.benchConfig(1), nil},
		{"unchanged", prior, h.benchConfig(1), nil},
		{"default written out", prior, with("transport", tftypes.NewValue(tftypes.String, "tcp")), nil},
		{"in place", prior, with("host_iface", tftypes.NewValue(tftypes.String, "eth0")), nil},
		{"nsid", prior, h.benchConfig(2), []string{"nsid"}},
		{"traddr unknown", prior, with("traddr", tftypes.NewValue(tftypes.String, tftypes.UnknownValue)), []string{"traddr"}},
		{"trsvcid", prior, with("trsvcid", tftypes.NewValue(tftypes.String, "4421")), []string{"trsvcid"}},
		{"namespace_uuid", prior, with("namespace_uuid", tftypes.NewValue(tftypes.String, "0e3f7c2a-51b4-4d8e-9a6c-2b7d1e4f8a90")), []string{"namespace_uuid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := h.plan(t, h.planRequest(t, tt.prior, tt.config))
			for _, d := range resp.Diagnostics {
				t.Fatalf("%s: %s", d.Summary, d.Detail)
			}
			var got []string
			for _, p := range resp.RequiresReplace {
				got = append(got, p.String())
			}
			want := make([]string, len(tt.want))
			for i, name := range tt.want {
				want[i] = tftypes.NewAttributePath().WithAttributeName(name).String()
			}
			if !slices.Equal(got, want) {
				t.Fatalf("requires replace %v, want %v", got, want)
			}
		})
	}
}
