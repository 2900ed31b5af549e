package nvme

import (
	"fmt"
	"slices"
	"strings"
)

// FormatPolicy says when the plugin may put a file system on a namespace
// that has none. It is the volume's, not the connection's: two namespaces of
// one subsystem may differ.
type FormatPolicy string

// Format policies. The default refuses a device whose first MiB holds data
// that no file system signature explains: raw data of a block-mode user,
// or of a file system blkid does not know, is never formatted by surprise.
const (
	// FormatIfBlank formats only a device with no signature whose first MiB
	// reads as zeros. The default.
	FormatIfBlank FormatPolicy = "if-blank"
	// FormatIfNoFilesystem formats a device with no file system signature
	// even when it holds data: for namespaces a target hands out dirty.
	// Whatever is on them is lost.
	FormatIfNoFilesystem FormatPolicy = "if-no-filesystem"
	// FormatNever never formats: the namespace must already hold the file
	// system the volume asks for.
	FormatNever FormatPolicy = "never"
)

// FormatPolicies lists the accepted policies, default first.
func FormatPolicies() []FormatPolicy {
	return []FormatPolicy{FormatIfBlank, FormatIfNoFilesystem, FormatNever}
}

// OrDefault returns p, or FormatIfBlank when p is unset.
func (p FormatPolicy) OrDefault() FormatPolicy {
	if p == "" {
		return FormatIfBlank
	}
	return p
}

var formatPolicyAllowed = func() string {
	names := make([]string, 0, 3)
	for _, p := range FormatPolicies() {
		names = append(names, fmt.Sprintf("%q", p))
	}
	return "must be one of " + strings.Join(names, ", ") + ` (default "if-blank")`
}()

func parseFormatPolicy(key, s string) (FormatPolicy, *FieldError) {
	if !slices.Contains(FormatPolicies(), FormatPolicy(s)) {
		return "", &FieldError{Key: key, Value: s, Reason: formatPolicyAllowed}
	}
	return FormatPolicy(s), nil
}
