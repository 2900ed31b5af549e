package provider

import (
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// fieldReporter turns the core's validation errors into diagnostics on the
// attributes they name. The detail starts with the core's own message, the
// text the CSI plugin returns for the same volume context, so a search for
// either finds the other.
type fieldReporter struct {
	// pathOf says where the diagnostic for a volume-context key goes.
	pathOf func(key string) path.Path
	// pending holds keys whose values are unknown until apply. An error
	// that involves one of them may be an artefact of the missing value;
	// the rule is checked again once the value is known.
	pending map[string]bool
	// origin explains, per key, where a value came from when it was not
	// written on the object being reported on.
	origin map[string]string
}

func (r fieldReporter) report(err error) diag.Diagnostics {
	var diags diag.Diagnostics
	fes := nvme.AsFieldErrors(err)
	if len(fes) == 0 {
		diags.AddError("Invalid NVMe connection", err.Error())
		return diags
	}
	for _, fe := range fes {
		if r.involvesPending(fe) {
			continue
		}
		diags.AddAttributeError(r.pathOf(fe.Key), "Invalid "+attributeForKey(fe.Key), r.detail(fe))
	}
	return diags
}

func (r fieldReporter) involvesPending(fe *nvme.FieldError) bool {
	keys := append([]string{fe.Key}, fe.Related...)
	for _, k := range keys {
		if r.pending[k] {
			return true
		}
	}
	// A rule between portals (one given twice) names their addresses but
	// compares every field: a port or source known only at apply may make
	// them differ.
	if len(fe.Related) == 0 {
		return false
	}
	for _, k := range keys {
		if n, ok := portalNumber(k); ok && r.portalPending(n) {
			return true
		}
	}
	return false
}

// portalPending tells whether a field of portal n is known only at apply.
func (r fieldReporter) portalPending(n int) bool {
	for _, k := range nvme.PortalKeys() {
		if r.pending[nvme.PortalKey(k, n)] {
			return true
		}
	}
	return false
}

// detail is the core's message, then the attributes a cross-field rule
// involves and where inherited values came from.
func (r fieldReporter) detail(fe *nvme.FieldError) string {
	var b strings.Builder
	b.WriteString(fe.Error())
	keys := append([]string{fe.Key}, fe.Related...)
	if len(fe.Related) > 0 {
		attrs := make([]string, len(keys))
		for i, k := range keys {
			attrs[i] = attributeForKey(k)
		}
		b.WriteString("\n\nThis rule involves the attributes " + strings.Join(attrs, " and ") + ".")
	}
	for _, k := range keys {
		if o := r.origin[k]; o != "" {
			b.WriteString("\n" + attributeForKey(k) + " " + o + ".")
		}
	}
	return b.String()
}
