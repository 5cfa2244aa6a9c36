// Package version reports the version of the ebb binary it is linked into.
// The values are stamped at build time by the Makefile through -ldflags.
package version
