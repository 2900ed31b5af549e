package provider

import (
	"context"
	"fmt"
	"slices"
	"testing"

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
	server := NewServer("bench")()
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

// benchProviderBlock is test/providerbench/plan.sh's provider block.
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

// namespacesValue is a namespaces map of n entries vol0.. with nsid 1...
func (h *planHarness) namespacesValue(n int) tftypes.Value {
	mapType, ok := h.resourceType.AttributeTypes[attrNamespaces].(tftypes.Map)
	if !ok {
		panic("namespaces is not a map")
	}
	entryType, ok := mapType.ElementType.(tftypes.Object)
	if !ok {
		panic("a namespace is not an object")
	}
	entries := make(map[string]tftypes.Value, n)
	for i := range n {
		entries[fmt.Sprintf("vol%d", i)] = objectValue(entryType, map[string]tftypes.Value{"nsid": tftypes.NewValue(tftypes.Number, i+1)})
	}
	return tftypes.NewValue(mapType, entries)
}

// config is an nvme_connection configuration of test/providerbench/plan.sh
// with n namespaces, and attrs set over it.
func (h *planHarness) config(n int, attrs map[string]tftypes.Value) tftypes.Value {
	vals := map[string]tftypes.Value{
		"traddr":        tftypes.NewValue(tftypes.String, "192.0.2.10"),
		"subsystem_nqn": tftypes.NewValue(tftypes.String, "nqn.2014-08.org.example:bench"),
		attrNamespaces:  h.namespacesValue(n),
	}
	for k, v := range attrs {
		vals[k] = v
	}
	return objectValue(h.resourceType, vals)
}

// BenchmarkPlanResourceChange is the provider's share of planning one
// nvme_connection of test/providerbench/plan.sh, with 1 and with 500
// namespaces: a create, and an in-place update of an existing one.
func BenchmarkPlanResourceChange(b *testing.B) {
	for _, n := range []int{1, 500} {
		h := newPlanHarness(b, benchProviderBlock())
		create := h.planRequest(b, tftypes.NewValue(h.resourceType, nil), h.config(n, nil))
		first, prior := h.plan(b, create)
		update := h.planRequest(b, prior, h.config(n, map[string]tftypes.Value{"keep_alive_tmo": tftypes.NewValue(tftypes.Number, 60)}))
		// Every call is the same resource again (its claim token in the
		// private data), as in terraform's two calls for a replacement:
		// the subsystem claim is checked, not refused.
		create.PriorPrivate, update.PriorPrivate = first.PlannedPrivate, first.PlannedPrivate
		for _, bc := range []struct {
			name string
			req  *tfprotov6.PlanResourceChangeRequest
		}{{"create", create}, {"update", update}} {
			b.Run(fmt.Sprintf("%s/%d", bc.name, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					resp, err := h.server.PlanResourceChange(context.Background(), bc.req)
					if err != nil {
						b.Fatal(err)
					}
					for _, d := range resp.Diagnostics {
						b.Fatalf("plan: %s: %s", d.Summary, d.Detail)
					}
				}
			})
		}
	}
}

// TestPlanResourceChange_requiresReplace: a change of the target replaces
// the resource, any other change is made in place, and a create replaces
// nothing.
func TestPlanResourceChange_requiresReplace(t *testing.T) {
	h := newPlanHarness(t, nil)
	null := tftypes.NewValue(h.resourceType, nil)
	_, prior := h.plan(t, h.planRequest(t, null, h.config(1, nil)))
	with := func(name string, v tftypes.Value) tftypes.Value {
		return h.config(1, map[string]tftypes.Value{name: v})
	}
	// Each case is a plan of its own: a provider configured afresh.
	str := func(s string) tftypes.Value { return tftypes.NewValue(tftypes.String, s) }
	tests := []struct {
		name          string
		prior, config tftypes.Value
		want          []string
	}{
		{"create", null, h.config(1, nil), nil},
		{"unchanged", prior, h.config(1, nil), nil},
		{"default written out", prior, with("transport", str("tcp")), nil},
		{"in place", prior, with("host_iface", str("eth0")), nil},
		{"namespace added", prior, h.config(2, nil), nil},
		{"address spelled otherwise", prior, with("traddr", str("::ffff:192.0.2.10")), nil},
		{"traddr", prior, with("traddr", str("192.0.2.11")), []string{"traddr"}},
		{"traddr unknown", prior, with("traddr", tftypes.NewValue(tftypes.String, tftypes.UnknownValue)), []string{"traddr"}},
		{"trsvcid", prior, with("trsvcid", str("4421")), []string{"trsvcid"}},
		{"subsystem_nqn", prior, with("subsystem_nqn", str("nqn.2014-08.org.example:other")), []string{"subsystem_nqn"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newPlanHarness(t, nil)
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

// TestPlanResourceChange_replaceIsPlannedTwice follows terraform's two
// calls for a resource it replaces (the second with a null prior state and
// the first call's private data) and its one call for every other
// resource: the replaced resource keeps its claim, a resource that comes
// second to a claimed subsystem is refused, and a new plan (Configure)
// starts from no claims.
func TestPlanResourceChange_replaceIsPlannedTwice(t *testing.T) {
	h := newPlanHarness(t, nil)
	null := tftypes.NewValue(h.resourceType, nil)
	_, prior := h.plan(t, h.planRequest(t, null, h.config(1, nil)))
	h = newPlanHarness(t, nil) // the next plan

	moved := h.config(1, map[string]tftypes.Value{"trsvcid": tftypes.NewValue(tftypes.String, "4421")})
	first, _ := h.plan(t, h.planRequest(t, prior, moved))
	if len(first.Diagnostics) > 0 || len(first.RequiresReplace) == 0 {
		t.Fatalf("first call: %v, replace %v", first.Diagnostics, first.RequiresReplace)
	}
	second := h.planRequest(t, null, moved)
	second.PriorPrivate = first.PlannedPrivate
	if resp, _ := h.plan(t, second); len(resp.Diagnostics) > 0 {
		t.Fatalf("the second call of the same replacement was refused: %s", resp.Diagnostics[0].Detail)
	}
	// Without the first call's private data it is another resource.
	other := h.planRequest(t, null, moved)
	resp, _ := h.plan(t, other)
	if len(resp.Diagnostics) != 1 || resp.Diagnostics[0].Summary != "Subsystem declared twice" {
		t.Fatalf("a second connection to the subsystem: %v", resp.Diagnostics)
	}
}
