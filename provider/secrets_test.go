package provider

import (
	"strings"
	"testing"

	provschema "github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
)

// DH-HMAC-CHAP keys never pass through this provider, so none can reach
// its state: no attribute takes one, and one pasted where settings go
// (an import id) is refused without its value (examples/terraform/README.md).

const pastedKey = "DHHC-1:01:I+efvp4wVPrr1X+p6sJOvUZ1SSDG1iw4AF9yP+DSjRD2s8lh:"

// attributeNames lists every attribute path of a resource schema,
// nested ones included.
func attributeNames(prefix string, attrs map[string]schema.Attribute) []string {
	var out []string
	for name, a := range attrs {
		out = append(out, prefix+name)
		if n, ok := a.(schema.MapNestedAttribute); ok {
			out = append(out, attributeNames(prefix+name+".", n.NestedObject.Attributes)...)
		}
	}
	return out
}

func TestNoAttributeTakesAKey(t *testing.T) {
	names := attributeNames("nvme_connection.", connectionSchema().Attributes)
	for name, a := range providerSchema().Attributes {
		names = append(names, "provider."+name)
		if n, ok := a.(provschema.SingleNestedAttribute); ok {
			for sub := range n.Attributes {
				names = append(names, "provider."+name+"."+sub)
			}
		}
	}
	if len(names) < 10 {
		t.Fatalf("only %d attributes found: %v", len(names), names)
	}
	for _, n := range names {
		low := strings.ToLower(n)
		if strings.Contains(low, "secret") || strings.Contains(low, "dhchap") || strings.Contains(low, "password") {
			t.Errorf("attribute %s could take a DH-HMAC-CHAP key, which would then be in the state", n)
		}
	}
}

func TestImportRefusesAPastedKey(t *testing.T) {
	for _, id := range []string{
		"traddr=192.0.2.10,nqn=nqn.2014-08.org.example:fleet,dhchap_secret=" + pastedKey + ";data:nsid=1",
		"traddr=192.0.2.10,nqn=nqn.2014-08.org.example:fleet;data:nsid=1,dhchapCtrlSecret=" + pastedKey,
	} {
		conn, namespaces, err := parseImportID(id)
		if err == nil {
			_, err = importVolumes(conn, namespaces)
		}
		if err == nil {
			t.Fatalf("import id with a key accepted: %q", id)
		}
		body := strings.Split(pastedKey, ":")[2]
		if strings.Contains(err.Error(), pastedKey) || strings.Contains(err.Error(), body) {
			t.Errorf("the error shows the key: %v", err)
		}
		if !strings.Contains(strings.ToLower(err.Error()), "dhchap") {
			t.Errorf("the error does not name the key it refused: %v", err)
		}
	}
}
