//go:build !race

package pirn_test

const slack, raceEnabled = 1, false
