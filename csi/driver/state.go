package driver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
)

// controllerRecord is a controller a stage used: what it was asked for,
// and whether the plugin created it (rather than adopting one the
// provider or an admin made): only those are ever disconnected by the
// plugin.
type controllerRecord struct {
	Key    string
	Target nvme.Target
	Config nvme.ConnectionConfig
	// Created says the plugin asked the kernel for this controller. It is
	// written before the connect, so that a plugin killed while the kernel
	// creates the controller still knows on restart.
	Created bool
	// Name and ID identify the controller the plugin created, once the
	// kernel has answered; empty while the answer is not in. (CntlID is
	// kept for records written before ID: nvmet changes a controller's
	// cntlid at every reconnect, so it identifies nothing for long.)
	Name   string
	ID     uint64 `json:",omitempty"`
	CntlID int    `json:",omitempty"`
	// Boot is the kernel's boot_id when the record was written: a
	// controller does not outlive its boot, and after a reboot another one
	// may get the same name and sysfs inode. Empty in records from before
	// it was kept, and when the boot id cannot be read.
	Boot string `json:",omitempty"`
	// stale: written in another boot. Such a record describes nothing that
	// exists; only reconciliation sees it, to forget it.
	stale bool
}

// pending reports a creation whose answer never came in: the plugin was
// killed, or is waiting for the kernel right now.
func (r controllerRecord) pending() bool { return r.Created && r.Name == "" }

// owns reports whether ctrl is the controller this record says the plugin
// created. A controller someone else connected after the kernel deleted
// ours (ctrl_loss_tmo) has the same key, maybe the same name, but another
// ID; a pending record owns nothing until reconciliation settles it.
func (r controllerRecord) owns(ctrl kernel.Controller) bool {
	if !r.Created || r.Name == "" || r.Name != ctrl.Name {
		return false
	}
	if r.ID == 0 { // a record from before IDs
		return r.CntlID == ctrl.CntlID
	}
	return r.ID == ctrl.ID
}

// identify records ctrl as the one this record names.
func (r *controllerRecord) identify(ctrl kernel.Controller) {
	r.Name, r.ID, r.CntlID = ctrl.Name, ctrl.ID, 0
}

// stageRecord is a volume staged at a path: which controller serves it,
// which namespace it is, and how it is staged. It is written right before
// the mount and removed when the stage fails or is undone; whether the
// stage is in force is the mount table's to say.
type stageRecord struct {
	VolumeID    string
	StagingPath string
	Key         string
	Block       bool
	// Requested is the target as the volume context wrote it; Target the
	// same resolved (an address as sysfs shows it). Namespace is the
	// selector asked for, Found the namespace it found (nsid, uuid,
	// nguid); Config the connection settings; FSType, MountFlags and
	// ReadOnly how it mounted.
	Requested  nvme.Target
	Target     nvme.Target
	Namespace  nvme.NamespaceSelector
	Found      nvme.NamespaceSelector
	Config     nvme.ConnectionConfig
	FSType     string   `json:",omitempty"`
	MountFlags []string `json:",omitempty"`
	ReadOnly   bool     `json:",omitempty"`
	// Paths are the volume's paths in portal order, the first one first;
	// Key, Requested and Target above repeat the first (records from
	// before several portals have only those). IOPolicy is the one the
	// volume asked for, "" when it left the kernel's.
	Paths    []pathRecord  `json:",omitempty"`
	IOPolicy nvme.IOPolicy `json:",omitempty"`
	// Authenticated says the volume connects with DH-HMAC-CHAP secrets,
	// which are never recorded: the healer can reconnect its paths only
	// while it has them in memory.
	Authenticated bool `json:",omitempty"`
}

// pathRecord is one portal of a staged volume: the target as the volume
// context wrote it, the same resolved, and the key of the controller that
// serves it. Target and Key are empty while a host name in Requested has
// not resolved: the healer resolves it again.
type pathRecord struct {
	Key       string `json:",omitempty"`
	Requested nvme.Target
	Target    nvme.Target `json:",omitempty"`
}

// resolved reports whether the path's address is known.
func (p pathRecord) resolved() bool { return p.Key != "" }

// paths lists the record's paths; a record from before several portals
// has one.
func (r stageRecord) paths() []pathRecord {
	if len(r.Paths) > 0 {
		return r.Paths
	}
	requested := r.Requested
	if requested.NQN == "" {
		requested = r.Target
	}
	return []pathRecord{{Key: r.Key, Requested: requested, Target: r.Target}}
}

// subsystem is the NQN of the subsystem the record stages a namespace of.
func (r stageRecord) subsystem() string {
	if r.Target.NQN != "" {
		return r.Target.NQN
	}
	return r.Requested.NQN
}

// publishRecord is a staged volume published at a target path: what a
// NodeUnstage asks to know before it may take the staging mount away.
type publishRecord struct {
	VolumeID    string
	StagingPath string
	TargetPath  string
	Block       bool
	ReadOnly    bool
}

// formatRecord says the plugin started formatting a namespace it had
// found blank. A kill during mkfs leaves a device with neither a signature
// nor a blank head; this record is how the retried stage tells its own
// half-written file system from someone's raw data. It goes when the file
// system is mounted, or when the namespace is bound as a raw block device.
type formatRecord struct {
	Subsystem string
	NSID      uint32
	UUID      string
	NGUID     string
	VolumeID  string
}

func formatRecordOf(ns kernel.Namespace, volumeID string) formatRecord {
	return formatRecord{Subsystem: ns.Subsystem, NSID: ns.NSID, UUID: ns.UUID, NGUID: ns.NGUID, VolumeID: volumeID}
}

// Record directories of the state dir. "volumes" holds stage records.
const (
	controllersDir = "controllers"
	stagesDir      = "volumes"
	publishesDir   = "publishes"
	formatsDir     = "formats"
)

// stateStore keeps records as one small JSON file each, written to a temp
// file and renamed over the old one, so a kill at any moment leaves either
// the old or the new record. A record that cannot be parsed is set aside
// (renamed *.corrupt-<time>) and logged: the kernel and the mount table
// still say what is real, and one bad file must not stop every stage on
// the node.
//
// Only format records are fsync'd (two fsyncs, on the mkfs path), and only
// their removal syncs the directory. A kill of the plugin loses nothing
// without fsync: the page cache keeps every write. What fsync adds is
// survival of a crash of the whole host, and then every controller and
// every mount is gone with the kernel that held them: the controller,
// stage and publish records describe state that no longer exists,
// reconciliation forgets them (a controller record carries the boot id,
// so it owns nothing after a reboot), and losing one instead is the same.
// A format record is the exception: it speaks for the remote namespace,
// which keeps a half-written file system across the crash; lost, the
// retried stage refuses to touch the device (fail-closed), so it is
// synced for the sake of recovery; a removal that came back would let a
// later stage format raw data, so removals are synced.
type stateStore struct {
	dir string
	log hclog.Logger
	// boot is the kernel's boot_id; "" when it could not be read.
	boot string
}

func newStateStore(dir string, log hclog.Logger, boot string) (*stateStore, error) {
	for _, sub := range []string{controllersDir, stagesDir, publishesDir, formatsDir} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("create state dir: %w", err)
		}
	}
	return &stateStore{dir: dir, log: log, boot: boot}, nil
}

func (s *stateStore) path(sub string, parts ...string) string {
	return filepath.Join(s.dir, sub, recordName(parts...))
}

func (s *stateStore) controllerPath(key string) string { return s.path(controllersDir, key) }

func (s *stateStore) stagePath(volumeID, stagingPath string) string {
	return s.path(stagesDir, volumeID, filepath.Clean(stagingPath))
}

func (s *stateStore) publishPath(targetPath string) string {
	return s.path(publishesDir, filepath.Clean(targetPath))
}

func (s *stateStore) putController(r controllerRecord) error {
	r.Boot = s.boot
	return writeJSONAtomic(s.controllerPath(r.Key), r)
}

// controller returns key's record; ok false when there is none, or only
// one from another boot.
func (s *stateStore) controller(key string) (controllerRecord, bool, error) {
	var r controllerRecord
	ok, err := s.read(s.controllerPath(key), &r)
	if ok && s.fromAnotherBoot(r) {
		return controllerRecord{}, false, err
	}
	return r, ok, err
}

// fromAnotherBoot reports whether r was written before the last reboot.
func (s *stateStore) fromAnotherBoot(r controllerRecord) bool {
	return r.Boot != "" && s.boot != "" && r.Boot != s.boot
}

func (s *stateStore) deleteController(key string) error { return removeFile(s.controllerPath(key)) }

func (s *stateStore) putStage(r stageRecord) error {
	return writeJSONAtomic(s.stagePath(r.VolumeID, r.StagingPath), r)
}

func (s *stateStore) stage(volumeID, stagingPath string) (stageRecord, bool, error) {
	var r stageRecord
	ok, err := s.read(s.stagePath(volumeID, stagingPath), &r)
	return r, ok, err
}

// stageSetAside reports whether the stage record of volumeID at
// stagingPath was set aside as corrupt: its name proves the plugin staged
// that volume there.
func (s *stateStore) stageSetAside(volumeID, stagingPath string) (bool, error) {
	matches, err := filepath.Glob(s.stagePath(volumeID, stagingPath) + ".corrupt-*")
	if err != nil {
		return false, fmt.Errorf("look for set-aside records: %w", err)
	}
	return len(matches) > 0, nil
}

func (s *stateStore) deleteStage(volumeID, stagingPath string) error {
	return removeFile(s.stagePath(volumeID, stagingPath))
}

func (s *stateStore) putPublish(r publishRecord) error {
	return writeJSONAtomic(s.publishPath(r.TargetPath), r)
}

func (s *stateStore) publish(targetPath string) (publishRecord, bool, error) {
	var r publishRecord
	ok, err := s.read(s.publishPath(targetPath), &r)
	return r, ok, err
}

func (s *stateStore) deletePublish(targetPath string) error {
	return removeFile(s.publishPath(targetPath))
}

// formatPath keys a format record by the namespace's identity, not by its
// device name, which may change across reconnects.
func (s *stateStore) formatPath(ns kernel.Namespace) string {
	return s.path(formatsDir, ns.Subsystem, fmt.Sprint(ns.NSID), ns.UUID, ns.NGUID)
}

func (s *stateStore) putFormat(ns kernel.Namespace, volumeID string) error {
	return writeJSONDurable(s.formatPath(ns), formatRecordOf(ns, volumeID))
}

// formatStarted reports whether the plugin started formatting ns for
// volumeID and did not see the result mounted. A record of another volume
// licenses nothing: that volume's stage is not this one's to finish.
func (s *stateStore) formatStarted(ns kernel.Namespace, volumeID string) (bool, error) {
	var r formatRecord
	ok, err := s.read(s.formatPath(ns), &r)
	return ok && r == formatRecordOf(ns, volumeID), err
}

func (s *stateStore) deleteFormat(ns kernel.Namespace) error { return removeDurable(s.formatPath(ns)) }

// controllers lists every controller record, those of another boot marked
// stale.
func (s *stateStore) controllers() ([]controllerRecord, error) {
	recs, err := readAll[controllerRecord](s, controllersDir)
	for i := range recs {
		recs[i].stale = s.fromAnotherBoot(recs[i])
	}
	return recs, err
}

func (s *stateStore) stages() ([]stageRecord, error) { return readAll[stageRecord](s, stagesDir) }

func (s *stateStore) publishes() ([]publishRecord, error) {
	return readAll[publishRecord](s, publishesDir)
}

func readAll[T any](s *stateStore, sub string) ([]T, error) {
	dir := filepath.Join(s.dir, sub)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var out []T
	for _, e := range entries {
		if filepath.Ext(e.Name()) != ".json" {
			continue // a temp file a kill left behind, or a record set aside
		}
		var r T
		ok, err := s.read(filepath.Join(dir, e.Name()), &r)
		if err != nil {
			// One record that cannot be read (EIO, a directory in its
			// place) must not stop every operation on the node: the
			// kernel and the mount table still say what is real.
			s.log.Error("state record cannot be read; skipping it", "path", filepath.Join(dir, e.Name()), "error", err)
			continue
		}
		if ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// read parses the record at path into v; false when there is none, or
// when it was corrupt and has been set aside.
func (s *stateStore) read(path string, v any) (bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read state record: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		aside := path + ".corrupt-" + time.Now().UTC().Format("20060102T150405.000000000")
		if rerr := os.Rename(path, aside); rerr != nil {
			return false, fmt.Errorf("state record %s is corrupt (%w) and cannot be set aside: %w", path, err, rerr)
		}
		s.log.Error("corrupt state record set aside; going by the kernel and the mount table", "path", path, "moved_to", aside, "error", err)
		return false, nil
	}
	return true, nil
}

// writeJSONAtomic writes a temp file beside path and renames it over
// path: a kill leaves the old record or the new one, never half of one.
// It does not fsync (see stateStore for why no record but a format record
// needs to survive a crash of the host).
func writeJSONAtomic(path string, v any) error {
	return writeJSON(path, v, false)
}

// writeJSONDurable is writeJSONAtomic that also syncs the file before the
// rename and the directory after it, so the record survives a power cut.
func writeJSONDurable(path string, v any) error {
	return writeJSON(path, v, true)
}

func writeJSON(path string, v any, durable bool) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state record: %w", err)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("write state record: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write state record %s: %w", path, err)
	}
	if durable {
		return syncDir(dir)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync state dir: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync state dir: %w", err)
	}
	return nil
}

// removeFile removes a record; one already gone is no error.
func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove state record: %w", err)
	}
	return nil
}

// removeDurable removes a record and, when there was one, syncs the
// directory, so the removal survives a power cut.
func removeDurable(path string) error {
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove state record: %w", err)
	}
	return syncDir(filepath.Dir(path))
}
