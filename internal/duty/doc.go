// Package duty runs the daemon's background duties: the preload list
// (loaded at start, pinned, refreshed every interval plus a random share of
// the jitter so that a fleet of devices does not hit the origin at once,
// backing off while the origin cannot be reached) and the periodic integrity
// scrub of the cache. An avatar's first load after it joins the list is a
// Preload, which a cached copy fresh by its max-age answers without a
// request; every later one is a Refresh, which revalidates with the origin
// (a conditional request: an unchanged avatar costs one 304).
//
// Next is the refresh schedule as a pure function of the last refresh, the
// interval, the jitter, the refresh windows (ranges of local time) and a
// random source, so that a simulation can run it for a fleet in virtual
// time. Refreshes are background work that the preloader holds outside
// the windows and, unless configured otherwise, while the link is metered
// (SetMetered); the first fetch of an avatar not cached yet is never held.
//
// Each duty is one goroutine owned by its Run method, driven by a single
// timer for the next thing due: nothing polls. duty knows the manager only
// through the narrow interfaces below; it imports neither manager nor store.
package duty
