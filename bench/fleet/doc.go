// Package fleet simulates a fleet of devices against one origin, to size
// what a fleet costs the origin beyond what this machine can run for real.
//
// Each simulated device runs the daemon's real refresh scheduler
// (duty.Preloader, one per device, with the configuration's interval and
// jitter) in virtual time (testing/synctest), over a simulated day with
// one republish. Its Loader is a model of the manager: a conditional
// manifest request to the origin, then the blobs the new manifest names
// that the device does not hold yet. Devices reach the origin directly or
// through a model of the site cache (deploy/site-cache/nginx.conf): blobs
// cached once per site, manifests revalidated with the origin on every
// request.
//
// The simulation is a test: `make fleet-sim` runs 10,000 devices and
// writes the Simulation section of docs/fleet.md; `make test` runs a small
// fleet and checks its invariants (every device ends with the new
// version, each blob leaves the origin once per site with a cache and
// once per device without).
package fleet
