package nvme

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrInvalid is matched (errors.Is) by every validation error of this
// package, so callers can map all of them to one class (gRPC
// InvalidArgument, a Terraform diagnostic) without reading the text.
var ErrInvalid = errors.New("invalid NVMe connection setting")

// FieldError says which setting is wrong, with which value, and what is
// allowed. Key is the canonical volume-context key; Related names the other
// keys of a cross-field rule, so a caller can point at all of them.
type FieldError struct {
	Key     string
	Value   string
	Reason  string
	Related []string
	// Secret hides Value from Error(): keys and passwords never reach a log
	// line or an error message.
	Secret bool
}

func (e *FieldError) Error() string {
	key := Truncate(e.Key)
	switch {
	case e.Secret:
		return fmt.Sprintf("invalid %s (value redacted): %s", key, e.Reason)
	case e.Value == "":
		return fmt.Sprintf("invalid %s: %s", key, e.Reason)
	default:
		return fmt.Sprintf("invalid %s %q: %s", key, Truncate(e.Value), e.Reason)
	}
}

// MaxEcho is the most of a key or value (in bytes) an error or log line
// repeats. It is above the longest legitimate value (an NQN is at most 222
// bytes, a host name 253); input can be megabytes, and echoing it whole
// costs CPU, floods logs and says nothing more.
const MaxEcho = 256

// Truncate shortens s for an error or a log line to MaxEcho bytes, cut on
// a rune boundary, and says how long it was.
func Truncate(s string) string {
	if len(s) <= MaxEcho {
		return s
	}
	cut := MaxEcho
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s...(%d bytes)", s[:cut], len(s))
}

// Is makes every FieldError match ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// Permanent tells retry classifiers that repeating the operation cannot
// help: the input itself is wrong.
func (e *FieldError) Permanent() bool { return true }

// FieldErrors collects every problem of one input, so a user fixes them all
// in one round instead of one per plan.
type FieldErrors []*FieldError

func (es FieldErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// Is makes FieldErrors match ErrInvalid.
func (es FieldErrors) Is(target error) bool { return target == ErrInvalid }

// Permanent: see FieldError.Permanent.
func (es FieldErrors) Permanent() bool { return true }

// Unwrap exposes the single errors to errors.As.
func (es FieldErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// add appends e unless it is nil.
func (es *FieldErrors) add(e *FieldError) {
	if e != nil {
		*es = append(*es, e)
	}
}

// orNil turns an empty list into a nil error; a typed nil slice inside an
// error interface would compare non-nil.
func (es FieldErrors) orNil() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// AsFieldErrors returns the field errors inside err, in order.
func AsFieldErrors(err error) []*FieldError {
	var es FieldErrors
	if errors.As(err, &es) {
		return es
	}
	var e *FieldError
	if errors.As(err, &e) {
		return []*FieldError{e}
	}
	return nil
}
