package memtest

import (
	"runtime"
	"testing"
)

// sink keeps the allocation below alive until it has been touched.
var sink []byte

// TestPeakSeesAnAllocation: touching 64 MiB raises the peak by about that
// much, and ResetPeak brings it back near the current RSS.
func TestPeakSeesAnAllocation(t *testing.T) {
	if !ResetPeak() {
		t.Skip("the peak RSS cannot be reset here")
	}
	before, ok := Peak()
	if !ok {
		t.Skip("no VmHWM")
	}
	sink = make([]byte, 64<<20)
	for i := range sink {
		sink[i] = 1
	}
	after, _ := Peak()
	if after < before+60<<20 {
		t.Errorf("peak %d → %d KiB after touching 64 MiB", before>>10, after>>10)
	}
	sink = nil
	runtime.GC()
	if !ResetPeak() {
		t.Fatal("ResetPeak failed the second time")
	}
	reset, _ := Peak()
	rss, _ := RSS()
	if reset > rss+8<<20 {
		t.Errorf("after ResetPeak the peak is %d KiB, the RSS %d KiB", reset>>10, rss>>10)
	}
}
