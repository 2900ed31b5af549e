package driver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
)

// controllerRecord is a controller a stage asked for. Created says the
// plugin made it (rather than adopting one the provider or an admin made):
// only those are ever disconnected by the plugin. It is written before the
// connect, so a plugin killed in between still knows on restart.
type controllerRecord struct {
	Key     string
	Target  nvme.Target
	Config  nvme.ConnectionConfig
	Created bool
	// Name and CntlID identify the controller the plugin created, once the
	// kernel has said; empty when a kill came between the record and the
	// kernel's answer.
	Name   string
	CntlID int
}

// owns reports whether ctrl is the controller this record says the plugin
// created. A controller someone else connected after the kernel deleted
// ours (ctrl_loss_tmo) has the same key but another name or cntlid.
func (r controllerRecord) owns(ctrl kernel.Controller) bool {
	if !r.Created {
		return false
	}
	return r.Name == "" || (r.Name == ctrl.Name && r.CntlID == ctrl.CntlID)
}

// volumeRecord is a staged volume: which controller key serves it.
type volumeRecord struct {
	VolumeID    string
	StagingPath string
	Key         string
	Block       bool
}

// stateStore keeps records as one small JSON file each, written atomically,
// so a kill at any moment leaves either the old or the new record.
type stateStore struct{ dir string }

func newStateStore(dir string) (*stateStore, error) {
	for _, sub := range []string{"controllers", "volumes"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("create state dir: %w", err)
		}
	}
	return &stateStore{dir: dir}, nil
}

func (s *stateStore) controllerPath(key string) string {
	return filepath.Join(s.dir, "controllers", recordName(key))
}

func (s *stateStore) volumePath(volumeID, stagingPath string) string {
	return filepath.Join(s.dir, "volumes", recordName(volumeID, filepath.Clean(stagingPath)))
}

func (s *stateStore) putController(r controllerRecord) error {
	return writeJSONAtomic(s.controllerPath(r.Key), r)
}

// controller returns key's record; ok false when there is none.
func (s *stateStore) controller(key string) (controllerRecord, bool, error) {
	var r controllerRecord
	ok, err := readJSON(s.controllerPath(key), &r)
	return r, ok, err
}

func (s *stateStore) deleteController(key string) error {
	return removeFile(s.controllerPath(key))
}

func (s *stateStore) putVolume(r volumeRecord) error {
	return writeJSONAtomic(s.volumePath(r.VolumeID, r.StagingPath), r)
}

func (s *stateStore) volume(volumeID, stagingPath string) (volumeRecord, bool, error) {
	var r volumeRecord
	ok, err := readJSON(s.volumePath(volumeID, stagingPath), &r)
	return r, ok, err
}

func (s *stateStore) deleteVolume(volumeID, stagingPath string) error {
	return removeFile(s.volumePath(volumeID, stagingPath))
}

func (s *stateStore) controllers() ([]controllerRecord, error) {
	return readAll[controllerRecord](filepath.Join(s.dir, "controllers"))
}

func (s *stateStore) volumes() ([]volumeRecord, error) {
	return readAll[volumeRecord](filepath.Join(s.dir, "volumes"))
}

func readAll[T any](dir string) ([]T, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var out []T
	for _, e := range entries {
		if filepath.Ext(e.Name()) != ".json" {
			continue // a temp file a kill left behind
		}
		var r T
		ok, err := readJSON(filepath.Join(dir, e.Name()), &r)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, r)
		}
	}
	return out, nil
}

func readJSON(path string, v any) (bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read state record: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("parse state record %s: %w", path, err)
	}
	return true, nil
}

// writeJSONAtomic writes a temp file beside path, syncs it, renames it over
// path and syncs the directory, so the record survives a power cut whole.
func writeJSONAtomic(path string, v any) error {
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
	if err == nil {
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
	return syncDir(dir)
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

func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove state record: %w", err)
	}
	return syncDir(filepath.Dir(path))
}
