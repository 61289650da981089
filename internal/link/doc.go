// Package link watches whether the device's default route is metered, as
// NetworkManager reports it: the Metered property of
// org.freedesktop.NetworkManager on the system D-Bus (yes and guess-yes
// count as metered, as in snapd). It subscribes to the property's
// PropertiesChanged signal and to the name's owner changes, so a change
// applies at once and nothing polls. Without NetworkManager (no system bus,
// or the name not owned) the link counts as unmetered.
//
// link speaks D-Bus through github.com/godbus/dbus/v5; the daemon passes
// what it learns to the preloader.
package link
