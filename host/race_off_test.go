//go:build !race

package host_test

const slack, raceEnabled = 1, false
