// Package duty runs the daemon's background duties: the preload list
// (loaded at start, pinned, refreshed every interval plus a random share of
// the jitter so that a fleet of devices does not hit the origin at once,
// backing off while the origin cannot be reached) and the periodic integrity
// scrub of the cache. An avatar's first load after it joins the list is a
// Preload, which a cached copy fresh by its max-age answers without a
// request; every later one is a Refresh, which revalidates with the origin
// (a conditional request: an unchanged avatar costs one 304).
//
// Each duty is one goroutine owned by its Run method, driven by a single
// timer for the next thing due: nothing polls. duty knows the manager only
// through the narrow interfaces below; it imports neither manager nor store.
package duty
