package uevent

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	msg := func(fields ...string) []byte { return []byte(strings.Join(fields, "\x00") + "\x00") }
	tests := []struct {
		name string
		msg  []byte
		want Event
		ok   bool
	}{
		{
			name: "head disk added",
			msg: msg("add@/devices/virtual/nvme-subsystem/nvme-subsys0/nvme0n1", "ACTION=add",
				"DEVPATH=/devices/virtual/nvme-subsystem/nvme-subsys0/nvme0n1", "SUBSYSTEM=block", "MAJOR=259", "MINOR=0",
				"DEVNAME=nvme0n1", "DEVTYPE=disk", "DISKSEQ=9", "SEQNUM=2345"),
			want: Event{Action: "add", DevPath: "/devices/virtual/nvme-subsystem/nvme-subsys0/nvme0n1", Subsystem: "block", DevName: "nvme0n1", DevType: "disk"},
			ok:   true,
		},
		{
			name: "controller change without a dev name",
			msg:  msg("change@/devices/virtual/nvme-fabrics/ctl/nvme0", "ACTION=change", "DEVPATH=/devices/virtual/nvme-fabrics/ctl/nvme0", "SUBSYSTEM=nvme", "NVME_EVENT=connected"),
			want: Event{Action: "change", DevPath: "/devices/virtual/nvme-fabrics/ctl/nvme0", Subsystem: "nvme"},
			ok:   true,
		},
		{
			name: "a value holding '='",
			msg:  msg("add@/devices/x", "ACTION=add", "DEVPATH=/devices/x", "SUBSYSTEM=block", "DEVNAME=a=b"),
			want: Event{Action: "add", DevPath: "/devices/x", Subsystem: "block", DevName: "a=b"},
			ok:   true,
		},
		{name: "udev's re-sent form", msg: msg("libudev", "ACTION=add", "DEVPATH=/devices/x")},
		{name: "no action", msg: msg("add@/devices/x", "DEVPATH=/devices/x")},
		{name: "no devpath", msg: msg("add@/devices/x", "ACTION=add")},
		{name: "header only", msg: []byte("add@/devices/x")},
		{name: "empty", msg: nil},
		{name: "garbage", msg: []byte{0xff, 0, 0xfe, '=', 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Parse(tt.msg)
			if ok != tt.ok || got != tt.want {
				t.Fatalf("Parse = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("add@/devices/x\x00ACTION=add\x00DEVPATH=/devices/x\x00SUBSYSTEM=block\x00DEVNAME=nvme0n1\x00"))
	f.Add([]byte("libudev\x00"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		ev, ok := Parse(msg)
		if ok && (ev.Action == "" || ev.DevPath == "") {
			t.Fatalf("Parse accepted %q without action or devpath: %+v", msg, ev)
		}
	})
}

// Waiting ends with the wait bound or the context, whichever comes first,
// and says which. (Whether events arrive depends on the host: the kernel
// sends them only into the initial network namespace; the lab proves the
// real ones.)
func TestNextEnds(t *testing.T) {
	l, err := Listen()
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		wait time.Duration
		want error
	}{
		{
			name: "the wait bound passes",
			ctx:  func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			wait: time.Millisecond, want: os.ErrDeadlineExceeded,
		},
		{
			name: "the context ends first",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), time.Millisecond)
			},
			wait: time.Hour, want: context.DeadlineExceeded,
		},
		{
			name: "the context is cancelled already",
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			},
			want: context.Canceled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()
			for {
				ev, err := l.Next(ctx, tt.wait)
				if err == nil {
					continue // a real event of this host: wait on
				}
				if !errors.Is(err, tt.want) {
					t.Fatalf("Next = %+v, %v; want %v", ev, err, tt.want)
				}
				return
			}
		})
	}
}
