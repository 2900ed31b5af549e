package provider

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// The tests here drive additional_portals through the provider server as
// terraform does (validate, plan), without the CLI: fast enough to try
// every field with every payload. resource_connection_portals_test.go
// runs the same through terraform.

// portal is one element of additional_portals; a missing field is null,
// unknownField an unknown one.
type portal map[string]string

const unknownField = "\x00unknown"

// portalsValue is additional_portals holding ps; a nil portal is an
// element known only at apply.
func (h *planHarness) portalsValue(ps ...portal) tftypes.Value {
	listType, ok := h.resourceType.AttributeTypes[attrAdditionalPortals].(tftypes.List)
	if !ok {
		panic("additional_portals is not a list")
	}
	objType, ok := listType.ElementType.(tftypes.Object)
	if !ok {
		panic("a portal is not an object")
	}
	elems := make([]tftypes.Value, len(ps))
	for i, p := range ps {
		if p == nil {
			elems[i] = tftypes.NewValue(objType, tftypes.UnknownValue)
			continue
		}
		fields := make(map[string]tftypes.Value, len(p))
		for k, v := range p {
			fields[k] = tftypes.NewValue(tftypes.String, v)
			if v == unknownField {
				fields[k] = tftypes.NewValue(tftypes.String, tftypes.UnknownValue)
			}
		}
		elems[i] = objectValue(objType, fields)
	}
	return tftypes.NewValue(listType, elems)
}

// withPortals is the harness's one-namespace configuration with attrs
// (strings) and additional_portals set.
func (h *planHarness) withPortals(attrs map[string]string, ps ...portal) tftypes.Value {
	vals := map[string]tftypes.Value{attrAdditionalPortals: h.portalsValue(ps...)}
	for k, v := range attrs {
		vals[k] = tftypes.NewValue(tftypes.String, v)
		if v == unknownField {
			vals[k] = tftypes.NewValue(tftypes.String, tftypes.UnknownValue)
		}
	}
	return h.config(1, vals)
}

// validateAndPlan returns the diagnostics of terraform validate and of a
// create plan of config, each on a provider of its own.
func validateAndPlan(t *testing.T, build func(h *planHarness) tftypes.Value) (validate, plan []*tfprotov6.Diagnostic, planned tftypes.Value) {
	t.Helper()
	h := newPlanHarness(t, nil)
	dv := dynamicValue(t, build(h))
	resp, err := h.server.ValidateResourceConfig(context.Background(), &tfprotov6.ValidateResourceConfigRequest{
		TypeName: TypeName + "_connection", Config: &dv,
	})
	if err != nil {
		t.Fatal(err)
	}
	h = newPlanHarness(t, nil)
	presp, planned := h.plan(t, h.planRequest(t, tftypes.NewValue(h.resourceType, nil), build(h)))
	return resp.Diagnostics, presp.Diagnostics, planned
}

// elementPath is additional_portals[i].
func elementPath(i int) *tftypes.AttributePath {
	return tftypes.NewAttributePath().WithAttributeName(attrAdditionalPortals).WithElementKeyInt(i)
}

// expectOneError checks diags hold exactly one error, on at, whose summary
// names attr and whose detail carries the core's message for key.
func expectOneError(t *testing.T, stage string, diags []*tfprotov6.Diagnostic, at *tftypes.AttributePath, attr, key string) {
	t.Helper()
	if len(diags) != 1 {
		t.Fatalf("%s: %d diagnostics, want 1: %v", stage, len(diags), diagText(diags))
	}
	d := diags[0]
	if d.Severity != tfprotov6.DiagnosticSeverityError || !at.Equal(d.Attribute) ||
		d.Summary != "Invalid "+attr || !strings.HasPrefix(d.Detail, "invalid "+key+" ") {
		t.Fatalf("%s: %s at %v: %q; want an error at %v naming %s and %s", stage, d.Summary, d.Attribute, d.Detail, at, attr, key)
	}
}

func diagText(diags []*tfprotov6.Diagnostic) string {
	var b strings.Builder
	for _, d := range diags {
		fmt.Fprintf(&b, "[%v %s: %s] ", d.Attribute, d.Summary, d.Detail)
	}
	return b.String()
}

// TestPortalsRefuseInjection: every field of a further portal that goes
// into the kernel's option string refuses whatever could end a value or
// start another option, at validate and at plan, on the element's line and
// with the core's message for that portal's key.
func TestPortalsRefuseInjection(t *testing.T) {
	valid := portal{"traddr": "198.51.100.10"}
	fields := []struct{ name, good string }{
		{"traddr", "198.51.100.11"},
		{"trsvcid", "4420"},
		{"host_traddr", "192.0.2.1"},
		{"host_iface", "eth2"},
	}
	payloads := []struct{ name, text string }{
		{"comma", ",ctrl_loss_tmo=0"},
		{"newline", "\nhostnqn=nqn.2014-08.org.example:evil"},
		{"NUL", "\x00"},
		{"carriage return", "\r"},
		{"tab", "\t"},
		{"escape", "\x1b[2J"},
		{"DEL", "\x7f"},
		{"C1 control", "\u0085"},
		{"invalid UTF-8", "\xff"},
	}
	for _, f := range fields {
		for _, p := range payloads {
			t.Run(f.name+"/"+p.name, func(t *testing.T) {
				bad := portal{"traddr": "198.51.100.11"}
				bad[f.name] = f.good + p.text
				validate, plan, _ := validateAndPlan(t, func(h *planHarness) tftypes.Value {
					return h.withPortals(nil, valid, bad)
				})
				key := nvme.PortalKey(f.name, 3)
				attr := fmt.Sprintf("%s[1].%s", attrAdditionalPortals, f.name)
				expectOneError(t, "validate", validate, elementPath(1), attr, key)
				expectOneError(t, "plan", plan, elementPath(1), attr, key)
			})
		}
	}
}

// TestPortalsTwice: a path given twice is refused however it is spelled
// (an address by value, the default port written out or not); the same
// address through another port or interface is another path.
func TestPortalsTwice(t *testing.T) {
	tests := []struct {
		name    string
		first   map[string]string
		portals []portal
		dup     int // the element refused; -1 for none
	}{
		{"the first again", nil, []portal{{"traddr": "192.0.2.10"}}, 0},
		{"the first, its default port written out", nil, []portal{{"traddr": "192.0.2.10", "trsvcid": "4420"}}, 0},
		{"the first, IPv4-mapped", nil, []portal{{"traddr": "::ffff:192.0.2.10"}}, 0},
		{"the first, a host name in capitals", map[string]string{"traddr": "storage.example"}, []portal{{"traddr": "Storage.Example"}}, 0},
		{"two equal elements", nil, []portal{{"traddr": "198.51.100.10"}, {"traddr": "198.51.100.11"}, {"traddr": "198.51.100.10"}}, 2},
		{"an IPv6 address spelled two ways", nil, []portal{{"traddr": "2001:db8::20"}, {"traddr": "2001:DB8:0:0::20", "trsvcid": "4420"}}, 1},
		{"the same source twice", map[string]string{"host_iface": "eth1"}, []portal{{"traddr": "192.0.2.10", "host_iface": "eth1"}}, 0},
		{"the first through another port", nil, []portal{{"traddr": "192.0.2.10", "trsvcid": "4421"}}, -1},
		{"the first from another interface", map[string]string{"host_iface": "eth1"}, []portal{{"traddr": "192.0.2.10", "host_iface": "eth2"}}, -1},
		{"the first's port on the first's other port", map[string]string{"trsvcid": "4421"}, []portal{{"traddr": "192.0.2.10"}}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			validate, plan, _ := validateAndPlan(t, func(h *planHarness) tftypes.Value {
				return h.withPortals(tt.first, tt.portals...)
			})
			if tt.dup < 0 {
				if len(validate)+len(plan) > 0 {
					t.Fatalf("refused: %s %s", diagText(validate), diagText(plan))
				}
				return
			}
			key := nvme.PortalKey(nvme.KeyTrAddr, tt.dup+2)
			attr := fmt.Sprintf("%s[%d].traddr", attrAdditionalPortals, tt.dup)
			expectOneError(t, "validate", validate, elementPath(tt.dup), attr, key)
			expectOneError(t, "plan", plan, elementPath(tt.dup), attr, key)
			if !strings.Contains(plan[0].Detail, "give each path once") {
				t.Fatalf("detail %q does not say the path is given twice", plan[0].Detail)
			}
		})
	}
}

// TestPortalsAtMost: MaxPortals in all (the first and MaxPortals-1 more)
// plan; one more is refused on the list, which has no element to point at.
func TestPortalsAtMost(t *testing.T) {
	many := func(n int) []portal {
		ps := make([]portal, n)
		for i := range ps {
			ps[i] = portal{"traddr": fmt.Sprintf("198.51.100.%d", 10+i)}
		}
		return ps
	}
	validate, plan, planned := validateAndPlan(t, func(h *planHarness) tftypes.Value { return h.withPortals(nil, many(nvme.MaxPortals-1)...) })
	if len(validate)+len(plan) > 0 {
		t.Fatalf("%d portals refused: %s %s", nvme.MaxPortals, diagText(validate), diagText(plan))
	}
	vc := plannedContext(t, planned, "vol0")
	if vc[nvme.PortalKey(nvme.KeyTrAddr, nvme.MaxPortals)] == "" {
		t.Fatalf("portal %d missing from the volume context %v", nvme.MaxPortals, vc)
	}
	validate, plan, _ = validateAndPlan(t, func(h *planHarness) tftypes.Value { return h.withPortals(nil, many(nvme.MaxPortals)...) })
	for stage, diags := range map[string][]*tfprotov6.Diagnostic{"validate": validate, "plan": plan} {
		list := tftypes.NewAttributePath().WithAttributeName(attrAdditionalPortals)
		if len(diags) == 0 || !list.Equal(diags[0].Attribute) ||
			!strings.Contains(diags[0].Detail, fmt.Sprintf("a volume has at most %d portals", nvme.MaxPortals)) {
			t.Fatalf("%s of %d portals: %s", stage, nvme.MaxPortals+1, diagText(diags))
		}
	}
}

// plannedContext is volume_contexts[name] of a planned state; nil when it
// is unknown.
func plannedContext(t *testing.T, planned tftypes.Value, name string) map[string]string {
	t.Helper()
	var attrs, contexts map[string]tftypes.Value
	if err := planned.As(&attrs); err != nil {
		t.Fatal(err)
	}
	if !attrs[attrVolumeContexts].IsKnown() {
		return nil
	}
	if err := attrs[attrVolumeContexts].As(&contexts); err != nil {
		t.Fatal(err)
	}
	if !contexts[name].IsKnown() {
		return nil
	}
	var vc map[string]string
	var raw map[string]tftypes.Value
	if err := contexts[name].As(&raw); err != nil {
		t.Fatal(err)
	}
	vc = make(map[string]string, len(raw))
	for k, v := range raw {
		var s string
		if err := v.As(&s); err != nil {
			t.Fatal(err)
		}
		vc[k] = s
	}
	return vc
}

// TestPortalsUnknownAtPlan: a portal, a field of one or the whole list
// known only at apply leaves the volume contexts unknown rather than
// wrong, and no rule fires on a value that is missing for now: here every
// unknown value would, once known, tell the portal from the first.
func TestPortalsUnknownAtPlan(t *testing.T) {
	h := newPlanHarness(t, nil)
	listType, ok := h.resourceType.AttributeTypes[attrAdditionalPortals].(tftypes.List)
	if !ok {
		t.Fatal("additional_portals is not a list")
	}
	tests := []struct {
		name  string
		first map[string]string
		value func(h *planHarness) tftypes.Value
	}{
		{"the list", nil, func(*planHarness) tftypes.Value { return tftypes.NewValue(listType, tftypes.UnknownValue) }},
		{"an element", nil, func(h *planHarness) tftypes.Value { return h.portalsValue(nil, portal{"traddr": "198.51.100.10"}) }},
		{"traddr", nil, func(h *planHarness) tftypes.Value { return h.portalsValue(portal{"traddr": unknownField}) }},
		{"trsvcid", nil, func(h *planHarness) tftypes.Value {
			return h.portalsValue(portal{"traddr": "192.0.2.10", "trsvcid": unknownField})
		}},
		{"host_iface", nil, func(h *planHarness) tftypes.Value {
			return h.portalsValue(portal{"traddr": "192.0.2.10", "host_iface": unknownField})
		}},
		{"host_traddr", nil, func(h *planHarness) tftypes.Value {
			return h.portalsValue(portal{"traddr": "192.0.2.10", "host_traddr": unknownField})
		}},
		{"the first portal's port", map[string]string{"trsvcid": unknownField}, func(h *planHarness) tftypes.Value {
			return h.portalsValue(portal{"traddr": "192.0.2.10"})
		}},
		{"the first portal's source", map[string]string{"host_iface": unknownField}, func(h *planHarness) tftypes.Value {
			return h.portalsValue(portal{"traddr": "192.0.2.10"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			validate, plan, planned := validateAndPlan(t, func(h *planHarness) tftypes.Value {
				c := h.withPortals(tt.first)
				var attrs map[string]tftypes.Value
				if err := c.As(&attrs); err != nil {
					t.Fatal(err)
				}
				attrs[attrAdditionalPortals] = tt.value(h)
				return tftypes.NewValue(h.resourceType, attrs)
			})
			if len(validate)+len(plan) > 0 {
				t.Fatalf("refused before the values are known: %s %s", diagText(validate), diagText(plan))
			}
			if vc := plannedContext(t, planned, "vol0"); vc != nil {
				t.Fatalf("volume context known at plan: %v", vc)
			}
		})
	}
	// An invalid value beside an unknown one is still refused at plan.
	validate, plan, _ := validateAndPlan(t, func(h *planHarness) tftypes.Value {
		return h.withPortals(nil, portal{"traddr": "198.51.100.10,x", "trsvcid": unknownField})
	})
	expectOneError(t, "validate", validate, elementPath(0), "additional_portals[0].traddr", "traddr_2")
	expectOneError(t, "plan", plan, elementPath(0), "additional_portals[0].traddr", "traddr_2")
}

// TestPortalsDefaultPort: a further portal without trsvcid plans 4420,
// shown in the element and in the volume context, whatever port the first
// portal uses; one of its own is kept.
func TestPortalsDefaultPort(t *testing.T) {
	_, plan, planned := validateAndPlan(t, func(h *planHarness) tftypes.Value {
		return h.withPortals(map[string]string{"trsvcid": "4421"}, portal{"traddr": "198.51.100.10"}, portal{"traddr": "198.51.100.11", "trsvcid": "4430"})
	})
	if len(plan) > 0 {
		t.Fatal(diagText(plan))
	}
	vc := plannedContext(t, planned, "vol0")
	if vc["trsvcid"] != "4421" || vc["trsvcid_2"] != nvme.DefaultTrSvcID || vc["trsvcid_3"] != "4430" {
		t.Fatalf("volume context ports %q, %q, %q; want 4421, %s, 4430", vc["trsvcid"], vc["trsvcid_2"], vc["trsvcid_3"], nvme.DefaultTrSvcID)
	}
	var attrs map[string]tftypes.Value
	var elems []tftypes.Value
	var fields map[string]tftypes.Value
	var port string
	if err := planned.As(&attrs); err != nil {
		t.Fatal(err)
	}
	if err := attrs[attrAdditionalPortals].As(&elems); err != nil {
		t.Fatal(err)
	}
	if err := elems[0].As(&fields); err != nil {
		t.Fatal(err)
	}
	if err := fields["trsvcid"].As(&port); err != nil || port != nvme.DefaultTrSvcID {
		t.Fatalf("planned additional_portals[0].trsvcid = %q (%v), want %s", port, err, nvme.DefaultTrSvcID)
	}
}
