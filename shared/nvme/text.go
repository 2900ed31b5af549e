package nvme

import (
	"unicode"
	"unicode/utf8"
)

// checkOptionText rejects what would let a value escape its slot in the
// kernel's option string: the separators ',' and '\n', NUL and every other
// control character, and bytes that are not UTF-8. It returns the reason, or
// "" when the text is safe.
func checkOptionText(s string) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	for _, r := range s {
		switch {
		case r == ',':
			return "must not contain ',' (the kernel splits its options on it)"
		case r == '\n':
			return "must not contain a newline (the kernel splits its options on it)"
		case r == 0:
			return "must not contain NUL"
		case unicode.IsControl(r):
			return "must not contain control characters"
		}
	}
	return ""
}
