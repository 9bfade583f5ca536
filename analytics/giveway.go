package analytics

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"sync"
)

// Vote intake comes before analytics. Under a burst of votes the sink's
// inserts are among the largest users of the CPU: on a machine whose every
// CPU is busy, each insert takes the time of votes waiting to be admitted.
// So while the machine's CPUs are saturated, the sink waits after each
// insert as long as the insert took: it uses at most half of one CPU,
// intake gets the rest, and analytics catch up once the burst is over
// (pollcast_analytics_lag_votes shows by how much they trail).

// saturation is the share of the machine's CPU time above which the sink
// gives way.
const saturation = 0.9

// cpuLoad tells how busy the machine's CPUs were between two calls, from
// /proc/stat. Where that cannot be read, it never reports them busy.
type cpuLoad struct {
	mu                sync.Mutex
	read              func() ([]byte, error)
	prevBusy, prevAll uint64
}

func newCPULoad() *cpuLoad {
	return &cpuLoad{read: func() ([]byte, error) { return os.ReadFile("/proc/stat") }}
}

// saturated reports whether the machine's CPUs were busy more than
// saturation of the time since the previous call (false on the first).
func (l *cpuLoad) saturated() bool {
	data, err := l.read()
	if err != nil {
		return false
	}
	busy, all, ok := parseProcStat(data)
	if !ok {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	prevBusy, prevAll := l.prevBusy, l.prevAll
	l.prevBusy, l.prevAll = busy, all
	if prevAll == 0 || all <= prevAll || busy < prevBusy {
		return false
	}
	return float64(busy-prevBusy) > saturation*float64(all-prevAll)
}

// parseProcStat reads the first line of /proc/stat, "cpu  user nice system
// idle iowait irq softirq steal ...", in clock ticks of all CPUs: busy is
// all but idle and iowait.
func parseProcStat(data []byte) (busy, all uint64, ok bool) {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	sc := bufio.NewScanner(bytes.NewReader(line))
	sc.Split(bufio.ScanWords)
	if !sc.Scan() || sc.Text() != "cpu" {
		return 0, 0, false
	}
	var idle uint64
	for i := 0; sc.Scan(); i++ {
		n, err := strconv.ParseUint(sc.Text(), 10, 64)
		if err != nil {
			return 0, 0, false
		}
		if i >= 8 { // guest and guest_nice are counted in user and nice already
			break
		}
		all += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	if all == 0 {
		return 0, 0, false
	}
	return all - idle, all, true
}
