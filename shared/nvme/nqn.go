package nvme

import (
	"fmt"
	"regexp"
	"strings"
)

// MaxNQNLength is the longest NQN the kernel accepts (NVMF_NQN_SIZE - 1).
const MaxNQNLength = 222

// DiscoveryNQN is the well-known NQN of discovery controllers.
const DiscoveryNQN = "nqn.2014-08.org.nvmexpress.discovery"

// NQNMode chooses how strictly an NQN's form is checked. Length, UTF-8 and
// the forbidden characters are checked in every mode.
type NQNMode int

const (
	// NQNFreeForm accepts any safe text: targets in the wild (and blktests)
	// use names such as "testnqn" that no specification would allow.
	NQNFreeForm NQNMode = iota
	// NQNStrict also requires one of the NVMe base specification's forms:
	// nqn.yyyy-mm.<reverse domain>:<name>, the uuid form, or the discovery NQN.
	NQNStrict
)

var (
	nqnUUIDForm   = regexp.MustCompile(`^nqn\.2014-08\.org\.nvmexpress:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	nqnDomainForm = regexp.MustCompile(`^nqn\.[0-9]{4}-(0[1-9]|1[0-2])\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+:.+$`)
)

const strictNQNForms = "nqn.yyyy-mm.<reverse domain>:<name>, nqn.2014-08.org.nvmexpress:uuid:<uuid>, or " + DiscoveryNQN

// ValidateNQN checks an NQN given under key (used in the error).
func ValidateNQN(key, nqn string, mode NQNMode) error {
	if e := checkNQN(key, nqn, mode); e != nil {
		return e
	}
	return nil
}

func checkNQN(key, nqn string, mode NQNMode) *FieldError {
	if nqn == "" {
		return &FieldError{Key: key, Value: nqn, Reason: "is required"}
	}
	if len(nqn) > MaxNQNLength {
		return &FieldError{Key: key, Value: nqn, Reason: fmt.Sprintf("is %d bytes long; at most %d are allowed", len(nqn), MaxNQNLength)}
	}
	if reason := checkOptionText(nqn); reason != "" {
		return &FieldError{Key: key, Value: nqn, Reason: reason}
	}
	if strings.TrimSpace(nqn) != nqn {
		return &FieldError{Key: key, Value: nqn, Reason: "must not start or end with white space"}
	}
	if mode == NQNStrict && nqn != DiscoveryNQN && !nqnUUIDForm.MatchString(nqn) && !nqnDomainForm.MatchString(nqn) {
		return &FieldError{Key: key, Value: nqn, Reason: "must have the form " + strictNQNForms}
	}
	return nil
}
