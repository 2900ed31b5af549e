package driver

import (
	"strconv"
	"sync"
	"time"
)

// stepTimer notes how long each step of an RPC took, for one debug line
// when the RPC ends ("steps"), from which the lab's benchmark splits calls
// into phases. A log line per step would cost more than most steps (a
// line is a write to a pipe and a wake-up of whoever reads it).
type stepTimer struct {
	mu   sync.Mutex
	last time.Time
	buf  []byte
}

func newStepTimer() *stepTimer { return &stepTimer{last: time.Now()} }

// step ends the step called name, which began when the last one ended.
func (s *stepTimer) step(name string) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.buf) > 0 {
		s.buf = append(s.buf, ' ')
	}
	s.buf = append(s.buf, name...)
	s.buf = append(s.buf, '=')
	s.buf = strconv.AppendFloat(s.buf, float64(now.Sub(s.last).Microseconds())/1000, 'f', 2, 64)
	s.last = now
}

// String lists the steps so far: "lock=0.02 look=1.10 ..." (milliseconds).
func (s *stepTimer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.buf)
}
