//go:build lab

package lab

import (
	"bytes"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nvmeof/nvmeof/test/lab/labtarget"
)

// These tests prove the harness, not the project's code: the kernel has
// NVMe/TCP on both sides and the target is the layout the other lab tests
// rely on. They talk to the kernel directly, independent of shared/nvme.

func TestSmokeFabricsDeviceListsOptions(t *testing.T) {
	f, err := os.OpenFile("/dev/nvme-fabrics", os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("open /dev/nvme-fabrics: %v", err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("close /dev/nvme-fabrics: %v", err)
		}
	})
	buf := make([]byte, 4096)
	n, err := f.Read(buf)
	if err != nil {
		t.Fatalf("read /dev/nvme-fabrics before any write: %v", err)
	}
	reply := string(buf[:n])
	if !strings.HasPrefix(reply, "instance=-1,cntlid=-1,") {
		t.Fatalf("first read = %q, want the option list after instance=-1,cntlid=-1,", reply)
	}
	options := map[string]bool{}
	for _, opt := range strings.FieldsFunc(reply, func(r rune) bool { return r == ',' || r == '\n' }) {
		name, _, _ := strings.Cut(opt, "=")
		options[name] = true
	}
	for _, want := range []string{
		"transport", "traddr", "trsvcid", "nqn", "hostnqn", "hostid", "ctrl_loss_tmo",
		"reconnect_delay", "fast_io_fail_tmo", "keep_alive_tmo", "nr_io_queues", "queue_size",
		"host_traddr", "host_iface", "hdr_digest", "data_digest", "tos",
	} {
		if !options[want] {
			t.Errorf("option %q missing from %q", want, reply)
		}
	}
}

func TestSmokeTargetMatchesLayout(t *testing.T) {
	for _, s := range labtarget.Subsystems() {
		t.Run(s.NQN, func(t *testing.T) {
			dir := filepath.Join(labtarget.ConfigfsRoot, "subsystems", s.NQN)
			wantAnyHost := "0"
			if s.AllowAnyHost {
				wantAnyHost = "1"
			}
			if got := readTrimmed(t, filepath.Join(dir, "attr_allow_any_host")); got != wantAnyHost {
				t.Errorf("attr_allow_any_host = %q, want %q", got, wantAnyHost)
			}
			for _, host := range s.AllowedHosts {
				if _, err := os.Lstat(filepath.Join(dir, "allowed_hosts", host)); err != nil {
					t.Errorf("allowed host %s: %v", host, err)
				}
			}
			for _, ns := range s.Namespaces {
				nsDir := filepath.Join(dir, "namespaces", strconv.FormatUint(uint64(ns.NSID), 10))
				if got := readTrimmed(t, filepath.Join(nsDir, "enable")); got != "1" {
					t.Errorf("nsid %d enable = %q", ns.NSID, got)
				}
				if got := readTrimmed(t, filepath.Join(nsDir, "device_uuid")); got != ns.UUID {
					t.Errorf("nsid %d device_uuid = %q, want %q", ns.NSID, got, ns.UUID)
				}
				// nvmet shows the NGUID in UUID notation.
				got := strings.ReplaceAll(readTrimmed(t, filepath.Join(nsDir, "device_nguid")), "-", "")
				if got != ns.NGUID {
					t.Errorf("nsid %d device_nguid = %q, want %q", ns.NSID, got, ns.NGUID)
				}
				assertBlockDeviceSize(t, readTrimmed(t, filepath.Join(nsDir, "device_path")), labtarget.NamespaceSize)
			}
			linked, err := labtarget.Linked(s.NQN)
			if err != nil || !linked {
				t.Errorf("Linked() = %v, %v; want linked to port %s", linked, err, labtarget.PortID)
			}
		})
	}
}

func TestSmokeHostIdentityFiles(t *testing.T) {
	if got := readTrimmed(t, "/etc/nvme/hostnqn"); got != labtarget.HostNQN {
		t.Errorf("/etc/nvme/hostnqn = %q, want %q", got, labtarget.HostNQN)
	}
	if got := readTrimmed(t, "/etc/nvme/hostid"); got != labtarget.HostID {
		t.Errorf("/etc/nvme/hostid = %q, want %q", got, labtarget.HostID)
	}
}

func TestSmokePortListens(t *testing.T) {
	port := filepath.Join(labtarget.ConfigfsRoot, "ports", labtarget.PortID)
	for attr, want := range map[string]string{
		"addr_trtype": labtarget.Transport, "addr_adrfam": labtarget.AddressFamily,
		"addr_traddr": labtarget.TrAddr, "addr_trsvcid": labtarget.TrSvcID,
	} {
		if got := readTrimmed(t, filepath.Join(port, attr)); got != want {
			t.Errorf("port %s %s = %q, want %q", labtarget.PortID, attr, got, want)
		}
	}
	assertListening(t)
}

// TestSmokeUnlinkLink checks the outage helpers on the real configfs: the
// link goes and comes back, and the port keeps listening for the other
// subsystems in between.
func TestSmokeUnlinkLink(t *testing.T) {
	t.Cleanup(func() {
		if err := labtarget.Link(labtarget.SubsystemTwo); err != nil {
			t.Errorf("restore link: %v", err)
		}
	})
	if err := labtarget.Unlink(labtarget.SubsystemTwo); err != nil {
		t.Fatalf("Unlink() = %v", err)
	}
	if linked, err := labtarget.Linked(labtarget.SubsystemTwo); err != nil || linked {
		t.Fatalf("after Unlink, Linked() = %v, %v", linked, err)
	}
	assertListening(t)
	if err := labtarget.Link(labtarget.SubsystemTwo); err != nil {
		t.Fatalf("Link() = %v", err)
	}
	if linked, err := labtarget.Linked(labtarget.SubsystemTwo); err != nil || !linked {
		t.Fatalf("after Link, Linked() = %v, %v", linked, err)
	}
}

// TestSmokeRawConnect connects to subsystem one through /dev/nvme-fabrics
// with the lab host identity and checks that both namespaces show up with
// the layout's ids, then deletes the controller.
func TestSmokeRawConnect(t *testing.T) {
	opts := strings.Join([]string{
		"transport=" + labtarget.Transport, "traddr=" + labtarget.TrAddr, "trsvcid=" + labtarget.TrSvcID,
		"nqn=" + labtarget.SubsystemOne, "hostnqn=" + labtarget.HostNQN, "hostid=" + labtarget.HostID,
		"ctrl_loss_tmo=0",
	}, ",")
	f, err := os.OpenFile("/dev/nvme-fabrics", os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("open /dev/nvme-fabrics: %v", err)
	}
	_, err = f.WriteString(opts)
	buf := make([]byte, 256)
	n := 0
	if err == nil {
		n, err = f.Read(buf)
	}
	if cerr := f.Close(); cerr != nil {
		t.Errorf("close /dev/nvme-fabrics: %v", cerr)
	}
	if err != nil {
		t.Fatalf("connect %s: %v", labtarget.SubsystemOne, err)
	}
	instance, ok := parseInstance(string(buf[:n]))
	if !ok {
		t.Fatalf("connect reply %q has no instance", buf[:n])
	}
	ctrl := "/sys/class/nvme/nvme" + strconv.Itoa(instance)
	t.Cleanup(func() {
		if err := os.WriteFile(filepath.Join(ctrl, "delete_controller"), []byte("1"), 0o200); err != nil {
			t.Errorf("delete controller: %v", err)
		}
	})
	if got := readTrimmed(t, filepath.Join(ctrl, "state")); got != "live" {
		t.Errorf("controller state = %q, want live", got)
	}
	if got := readTrimmed(t, filepath.Join(ctrl, "subsysnqn")); got != labtarget.SubsystemOne {
		t.Errorf("subsysnqn = %q", got)
	}

	want := map[string]labtarget.Namespace{}
	for _, s := range labtarget.Subsystems() {
		if s.NQN == labtarget.SubsystemOne {
			for _, ns := range s.Namespaces {
				want[strconv.FormatUint(uint64(ns.NSID), 10)] = ns
			}
		}
	}
	// Namespaces appear asynchronously after the connect returns.
	found := map[string]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for len(found) < len(want) && time.Now().Before(deadline) {
		for _, disk := range subsystemDisks(t, labtarget.SubsystemOne) {
			nsid := readTrimmed(t, filepath.Join(disk, "nsid"))
			ns, ok := want[nsid]
			if !ok || found[nsid] {
				continue
			}
			found[nsid] = true
			if got := readTrimmed(t, filepath.Join(disk, "uuid")); got != ns.UUID {
				t.Errorf("nsid %s uuid = %q, want %q", nsid, got, ns.UUID)
			}
			if got := readTrimmed(t, filepath.Join(disk, "nguid")); strings.ReplaceAll(got, "-", "") != ns.NGUID {
				t.Errorf("nsid %s nguid = %q, want %q", nsid, got, ns.NGUID)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(found) != len(want) {
		t.Errorf("namespaces seen %v, want nsids of %v", found, want)
	}
}

// subsystemDisks lists the namespace head disks of the subsystem with
// this NQN (native multipath: /sys/class/nvme-subsystem/nvme-subsysK/nvmeKnI).
func subsystemDisks(t *testing.T, nqn string) []string {
	t.Helper()
	subsystems, err := filepath.Glob("/sys/class/nvme-subsystem/nvme-subsys*")
	if err != nil {
		t.Fatal(err)
	}
	var disks []string
	for _, subsys := range subsystems {
		if readTrimmed(t, filepath.Join(subsys, "subsysnqn")) != nqn {
			continue
		}
		heads, err := filepath.Glob(filepath.Join(subsys, "nvme*n*"))
		if err != nil {
			t.Fatal(err)
		}
		for _, head := range heads {
			if fileExists(filepath.Join(head, "nsid")) {
				disks = append(disks, head)
			}
		}
	}
	return disks
}

func parseInstance(reply string) (int, bool) {
	for _, field := range strings.Split(strings.TrimSpace(reply), ",") {
		if v, ok := strings.CutPrefix(field, "instance="); ok {
			n, err := strconv.Atoi(v)
			return n, err == nil && n >= 0
		}
	}
	return 0, false
}

func assertListening(t *testing.T) {
	t.Helper()
	dialer := net.Dialer{Timeout: 2 * time.Second}
	conn, err := dialer.DialContext(t.Context(), "tcp", net.JoinHostPort(labtarget.TrAddr, labtarget.TrSvcID))
	if err != nil {
		t.Fatalf("nvmet port %s: %v", labtarget.PortID, err)
	}
	if err := conn.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

func assertBlockDeviceSize(t *testing.T, device string, want int64) {
	t.Helper()
	name := filepath.Base(device)
	sectors, err := strconv.ParseInt(readTrimmed(t, filepath.Join("/sys/block", name, "size")), 10, 64)
	if err != nil {
		t.Fatalf("%s size: %v", device, err)
	}
	if sectors*512 != want {
		t.Errorf("%s is %d bytes, want %d", device, sectors*512, want)
	}
}

func readTrimmed(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(bytes.TrimSpace(b))
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
