//go:build race

package main

// raceEnabled: the test binary runs under the race detector, so the
// command is built with it too, from the packages already compiled.
const raceEnabled = true
