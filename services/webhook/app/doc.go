// Package app wires the ebb-webhook command: its flags (app/options), its
// clients and uncached reader, the HTTPS admission server, the health and
// metrics servers. The admission handler lives in internal/admission, the
// rules in internal/validate.
package app
