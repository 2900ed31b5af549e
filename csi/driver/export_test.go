package driver

import (
	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
)

// PutControllerRecordForTest writes the record a stage writes for a
// controller it creates: pending (its answer not in) when ctrl has no
// name, identified otherwise. Tests use it to build the state a plugin
// killed mid-stage leaves behind.
func PutControllerRecordForTest(d *Driver, host nvme.Host, target nvme.Target, cfg nvme.ConnectionConfig, ctrl kernel.Controller) error {
	rec := controllerRecord{Key: connectionKey(target, host), Target: target, Config: cfg, Created: true}
	if ctrl.Name != "" {
		rec.identify(ctrl)
	}
	return d.state.putController(rec)
}

// ControllerRecordsForTest lists the controller records as "portal
// created|adopted|pending".
func ControllerRecordsForTest(d *Driver) ([]string, error) {
	recs, err := d.state.controllers()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		how := "adopted"
		switch {
		case r.pending():
			how = "pending"
		case r.Created:
			how = "created"
		}
		out = append(out, r.Target.Portal().String()+" "+how)
	}
	return out, nil
}
