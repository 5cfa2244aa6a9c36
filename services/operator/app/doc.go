// Package app wires the ebb-operator command: its flags, its clients,
// informers, controllers, servers and leader election. The options live in
// app/options; the controllers in internal/.
package app
