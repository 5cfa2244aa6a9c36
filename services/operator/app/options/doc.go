// Package options holds the command-line options of ebb-operator: their
// flags and defaults, their validation, and the Config they complete into.
package options
