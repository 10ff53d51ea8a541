package serve

import (
	"sync"

	"github.com/pirn-wasm/pirn"
)

// Pending returns a run that is not done yet and the function that
// finishes it (closing Done; later calls do nothing; safe for concurrent
// use): for Submitters other than Runner, and for tests of triggers that
// wait on Done.
func Pending(id string) (*Run, func(*pirn.RunResult, error)) {
	r := &Run{ID: id, done: make(chan struct{})}
	var once sync.Once
	return r, func(res *pirn.RunResult, err error) {
		once.Do(func() {
			r.res, r.err = res, err
			close(r.done)
		})
	}
}
