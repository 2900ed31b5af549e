package provider

import (
	"context"
	"fmt"
	"sync"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// server is the framework's protocol server with the calls terraform makes
// for every nvme_connection on every plan answered directly:
// ValidateResourceConfig, PlanResourceChange and ReadResource. Everything
// else (schemas, provider configuration, apply, import, the function) is
// the framework's.
//
// Why: for each of those calls the framework walks the whole schema and
// value several times over (defaults, write-only attributes, computed
// nulls, per-attribute plan modifiers and validators, a copy of the
// attribute map per path step), and measured, that was almost all of the
// provider's CPU in `terraform plan` of 500 connections (2.85 s of about
// 2.9 s; docs/PERFORMANCE.md). The answers here are driven by the same
// settings tables as the schema, so the schema, the codec and the defaults
// still have one source.
type server struct {
	tfprotov6.ProviderServer
	provider *nvmeProvider
}

var _ tfprotov6.ProviderServer = (*server)(nil)

// NewServer returns a constructor of the provider's protocol 6 server, as
// tf6server.Serve takes it.
func NewServer(version string) func() tfprotov6.ProviderServer {
	return func() tfprotov6.ProviderServer {
		p := &nvmeProvider{version: version}
		return &server{ProviderServer: providerserver.NewProtocol6(p)(), provider: p}
	}
}

const connectionTypeName = TypeName + "_connection"

// connectionType is nvme_connection's object type, from its schema.
var connectionType = sync.OnceValue(func() tftypes.Object {
	t, ok := connectionSchema().Type().TerraformType(context.Background()).(tftypes.Object)
	if !ok {
		panic("the nvme_connection schema is not an object")
	}
	return t
})

func (s *server) ValidateResourceConfig(ctx context.Context, req *tfprotov6.ValidateResourceConfigRequest) (*tfprotov6.ValidateResourceConfigResponse, error) {
	if req.TypeName != connectionTypeName {
		resp, err := s.ProviderServer.ValidateResourceConfig(ctx, req)
		return resp, framework("ValidateResourceConfig", err)
	}
	resp := &tfprotov6.ValidateResourceConfigResponse{}
	config, err := req.Config.Unmarshal(connectionType())
	if err != nil {
		resp.Diagnostics = unreadable("configuration", err)
		return resp, nil
	}
	resp.Diagnostics = toProto(validateConnection(config))
	return resp, nil
}

func (s *server) PlanResourceChange(ctx context.Context, req *tfprotov6.PlanResourceChangeRequest) (*tfprotov6.PlanResourceChangeResponse, error) {
	if req.TypeName != connectionTypeName {
		resp, err := s.ProviderServer.PlanResourceChange(ctx, req)
		return resp, framework("PlanResourceChange", err)
	}
	resp := &tfprotov6.PlanResourceChangeResponse{PlannedState: req.ProposedNewState, PlannedPrivate: req.PriorPrivate}
	t := connectionType()
	var (
		in  = planRequest{priorPrivate: req.PriorPrivate}
		err error
	)
	for _, v := range []struct {
		what string
		dv   *tfprotov6.DynamicValue
		dst  *tftypes.Value
	}{{"configuration", req.Config, &in.config}, {"prior state", req.PriorState, &in.prior}, {"proposed new state", req.ProposedNewState, &in.proposed}} {
		*v.dst = tftypes.NewValue(t, nil)
		if v.dv == nil {
			continue
		}
		if *v.dst, err = v.dv.Unmarshal(t); err != nil {
			resp.Diagnostics = unreadable(v.what, err)
			return resp, nil
		}
	}
	out := planConnection(s.provider.current(), in)
	resp.Diagnostics = toProto(out.diags)
	if out.diags.HasError() {
		return resp, nil
	}
	planned, err := tfprotov6.NewDynamicValue(t, out.planned)
	if err != nil {
		resp.Diagnostics = unreadable("plan", err)
		return resp, nil
	}
	resp.PlannedState, resp.PlannedPrivate = &planned, out.private
	for _, p := range out.requiresReplace {
		resp.RequiresReplace = append(resp.RequiresReplace, toAttributePath(p))
	}
	return resp, nil
}

// ReadResource returns the state as it is: there is no remote object to
// refresh from, the state is the truth.
func (s *server) ReadResource(ctx context.Context, req *tfprotov6.ReadResourceRequest) (*tfprotov6.ReadResourceResponse, error) {
	if req.TypeName != connectionTypeName {
		resp, err := s.ProviderServer.ReadResource(ctx, req)
		return resp, framework("ReadResource", err)
	}
	return &tfprotov6.ReadResourceResponse{NewState: req.CurrentState, Private: req.Private, NewIdentity: req.CurrentIdentity}, nil
}

// framework names the call an error of the framework's server came from.
func framework(call string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", call, err)
	}
	return nil
}

// unreadable is the error for a value terraform sent that does not decode
// as an nvme_connection, which would be a bug on either side.
func unreadable(what string, err error) []*tfprotov6.Diagnostic {
	return []*tfprotov6.Diagnostic{{
		Severity: tfprotov6.DiagnosticSeverityError,
		Summary:  "Cannot read the " + what,
		Detail:   fmt.Sprintf("decode the %s as an nvme_connection object: %v", what, err),
	}}
}

// toProto converts diagnostics to the protocol's.
func toProto(diags diag.Diagnostics) []*tfprotov6.Diagnostic {
	out := make([]*tfprotov6.Diagnostic, 0, len(diags))
	for _, d := range diags {
		pd := &tfprotov6.Diagnostic{Severity: tfprotov6.DiagnosticSeverityWarning, Summary: d.Summary(), Detail: d.Detail()}
		if d.Severity() == diag.SeverityError {
			pd.Severity = tfprotov6.DiagnosticSeverityError
		}
		if wp, ok := d.(diag.DiagnosticWithPath); ok {
			pd.Attribute = toAttributePath(wp.Path())
		}
		out = append(out, pd)
	}
	return out
}

// toAttributePath converts the kinds of path this provider reports on:
// attributes, and elements of maps.
func toAttributePath(p path.Path) *tftypes.AttributePath {
	out := tftypes.NewAttributePath()
	for _, step := range p.Steps() {
		switch s := step.(type) {
		case path.PathStepAttributeName:
			out = out.WithAttributeName(string(s))
		case path.PathStepElementKeyString:
			out = out.WithElementKeyString(string(s))
		case path.PathStepElementKeyInt:
			out = out.WithElementKeyInt(int(s))
		}
	}
	return out
}
