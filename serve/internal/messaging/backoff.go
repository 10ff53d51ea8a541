package messaging

import (
	"math/rand/v2"
	"time"
)

// Reconnect backoff bounds used when the configuration leaves them at 0.
const (
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 10 * time.Second
)

// Backoff returns the wait before retry number tries (from 1) of a
// connection: doubling from lo, never above hi, with up to a fifth taken
// off at random so that clients restarted together spread their retries.
// Zero bounds take the defaults; any tries, however large or negative,
// gives a wait in [lo*4/5, hi].
func Backoff(lo, hi time.Duration) func(tries int) time.Duration {
	if lo <= 0 {
		lo = DefaultMinBackoff
	}
	if hi <= 0 {
		hi = DefaultMaxBackoff
	}
	hi = max(hi, lo)
	return func(tries int) time.Duration {
		d := lo
		for i := 1; i < tries && d < hi; i++ {
			d *= 2
		}
		d = min(d, hi)
		return d - time.Duration(rand.Int64N(int64(d)/5+1))
	}
}
