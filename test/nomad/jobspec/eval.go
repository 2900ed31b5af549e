package jobspec

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// evaluator evaluates expressions of one job file. Nomad resolves most of
// a job when it parses it (var.*), but leaves references to what only the
// client knows (${CSI_ENDPOINT}, ${NOMAD_ALLOC_ID}, ${attr.kernel.name},
// ${meta.x}) in the strings, for the task's environment to fill in at run
// time. The evaluator does the same: any root other than var becomes its
// own "${...}" text again.
type evaluator struct {
	ctx *hcl.EvalContext
	src []byte
}

// parseTime roots are the ones resolved while parsing.
var parseTime = map[string]bool{"var": true}

func (e *evaluator) value(expr hcl.Expression) (cty.Value, hcl.Diagnostics) {
	if !e.hasRuntimeRefs(expr) {
		return expr.Value(e.ctx)
	}
	switch x := expr.(type) {
	case *hclsyntax.TemplateWrapExpr:
		return e.value(x.Wrapped)
	case *hclsyntax.ScopeTraversalExpr:
		// A bare runtime reference only makes sense inside a string.
		return cty.StringVal("${" + e.text(x.Range()) + "}"), nil
	case *hclsyntax.TemplateExpr:
		var b strings.Builder
		var diags hcl.Diagnostics
		for _, part := range x.Parts {
			v, d := e.value(part)
			diags = append(diags, d...)
			if d.HasErrors() {
				continue
			}
			s, err := convert.Convert(v, cty.String)
			if err != nil || s.IsNull() || !s.IsKnown() {
				diags = append(diags, e.diag(part.Range(), "cannot be turned into a string", err))
				continue
			}
			b.WriteString(s.AsString())
		}
		return cty.StringVal(b.String()), diags
	case *hclsyntax.TupleConsExpr:
		vals := make([]cty.Value, 0, len(x.Exprs))
		var diags hcl.Diagnostics
		for _, el := range x.Exprs {
			v, d := e.value(el)
			diags = append(diags, d...)
			vals = append(vals, v)
		}
		if diags.HasErrors() {
			return cty.DynamicVal, diags
		}
		return cty.TupleVal(vals), diags
	}
	return cty.DynamicVal, hcl.Diagnostics{e.diag(expr.Range(),
		"refers to values Nomad fills in at run time in a place the driver's decoder cannot keep them", nil)}
}

// hasRuntimeRefs reports whether expr refers to anything but var.
func (e *evaluator) hasRuntimeRefs(expr hcl.Expression) bool {
	for _, tr := range expr.Variables() {
		if !parseTime[tr.RootName()] {
			return true
		}
	}
	return false
}

func (e *evaluator) text(r hcl.Range) string {
	if r.Start.Byte < 0 || r.End.Byte > len(e.src) || r.Start.Byte > r.End.Byte {
		return ""
	}
	return string(e.src[r.Start.Byte:r.End.Byte])
}

func (e *evaluator) diag(r hcl.Range, summary string, err error) *hcl.Diagnostic {
	d := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid expression", Detail: fmt.Sprintf("%q %s", e.text(r), summary), Subject: r.Ptr()}
	if err != nil {
		d.Detail += ": " + err.Error()
	}
	return d
}
