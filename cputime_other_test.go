//go:build !unix

package pirn_test

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
