// Package options holds the command-line options of ebb-webhook: their
// flags and defaults, their validation, and the Config they complete into.
package options
