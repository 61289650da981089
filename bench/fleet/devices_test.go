//go:build !race

package fleet

// defaultDevices is the fleet of `go test`: big enough for every invariant
// (several sites of 30), small enough for make test.
const defaultDevices = 300
