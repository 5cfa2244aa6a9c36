// Package cmdutil holds what every ebb command does alike: the one
// signal-cancelled context, and the checks of its bind-address and
// certificate-directory flags.
package cmdutil
