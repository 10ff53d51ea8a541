//go:build race

package pirn_test

// slack multiplies the time a test allows for containment: the race
// detector slows the host (not the guest's compiled code) several times,
// and its shadow memory makes RSS meaningless.
const slack, raceEnabled = 5, true
