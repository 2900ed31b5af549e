// Package nvmetest holds test helpers for code built on shared/nvme.
package nvmetest

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
)

// DHCHAPKey renders key the way `nvme gen-dhchap-key` does: the key and
// its CRC-32, base64, in the DHHC-1 envelope with no hash transform.
func DHCHAPKey(key []byte) string {
	raw := binary.LittleEndian.AppendUint32(bytes.Clone(key), crc32.ChecksumIEEE(key))
	return "DHHC-1:00:" + base64.StdEncoding.EncodeToString(raw) + ":"
}
