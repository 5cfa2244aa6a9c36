// Package tlsfiles loads a TLS key pair and a CA bundle from files in one
// directory, such as a cert-manager Secret mounted into a pod, and reloads
// them when they change, without a restart.
//
// The kubelet updates a mounted Secret by writing the new files into a
// fresh hidden directory and atomically re-pointing the ..data symlink at
// it; tls.crt, tls.key and ca.crt are symlinks through ..data. A Source
// therefore watches the directory itself (not the files), re-reads all
// three files after any event, validates them as one set and swaps the set
// in atomically. A periodic re-read covers missed events. A set that does
// not validate (a half-written update, a key that does not match its
// certificate, an unparseable CA) is rejected and the previous good set
// stays in use until a good one appears.
//
// The CA pool always holds exactly the certificates of the current ca.crt:
// a reload drops CAs that are no longer listed. To rotate a CA without
// refusing anyone, publish a ca.crt holding both the old and the new CA
// first, then issue certificates from the new CA, then drop the old CA.
package tlsfiles
