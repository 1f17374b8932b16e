//go:build race

package engine_test

// raceEnabled: the race detector instruments every memory access of the
// float64 reference, which makes the wide-shape numeric comparisons take
// half an hour; they run no goroutines of their own and run in the plain
// pass of build.sh test.
const raceEnabled = true
