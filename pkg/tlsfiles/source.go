package tlsfiles

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"k8s.io/klog/v2"
)

// Default file names, as written by cert-manager into a certificate Secret.
const (
	DefaultCertFile = "tls.crt"
	DefaultKeyFile  = "tls.key"
	DefaultCAFile   = "ca.crt"
)

// DefaultResyncInterval is how often a Source re-reads its files even when
// no file system event arrived.
const DefaultResyncInterval = 30 * time.Second

// debounce is how long a Source waits after the last file system event
// before re-reading, so that one update (which produces several events) is
// read once, after it is complete.
const debounce = 100 * time.Millisecond

// Option configures a Source.
type Option func(*options)

type options struct {
	certFile, keyFile, caFile string
	name                      string
	resync                    time.Duration
	watch                     bool
	verifyLeaf                bool
}

// WithFileNames sets the names, relative to the directory, of the
// certificate chain, the private key and the CA bundle. An empty name keeps
// the default.
func WithFileNames(certFile, keyFile, caFile string) Option {
	return func(o *options) {
		if certFile != "" {
			o.certFile = certFile
		}
		if keyFile != "" {
			o.keyFile = keyFile
		}
		if caFile != "" {
			o.caFile = caFile
		}
	}
}

// WithResyncInterval sets how often Run re-reads the files regardless of
// file system events. Zero or less disables the periodic re-read.
func WithResyncInterval(d time.Duration) Option {
	return func(o *options) { o.resync = d }
}

// WithoutWatcher stops Run from watching the directory with fsnotify, so
// only the periodic re-read picks up changes. Meant for tests and for file
// systems that do not deliver events.
func WithoutWatcher() Option {
	return func(o *options) { o.watch = false }
}

// WithName sets the value of the "source" label on the metrics of this
// Source. It defaults to the directory.
func WithName(name string) Option {
	return func(o *options) { o.name = name }
}

// WithLeafVerification makes a set valid only if its certificate chains up
// to a CA in its own CA bundle, as it does in a Secret issued by a
// cert-manager CA issuer. It catches a certificate and a CA bundle that come
// from different updates. Leave it off when ca.crt is a trust bundle that
// does not hold the issuer of the local certificate.
func WithLeafVerification() Option {
	return func(o *options) { o.verifyLeaf = true }
}

// Bundle is one validated, immutable set of files. A Bundle is never
// modified once published; a reload publishes a new one.
type Bundle struct {
	// Certificate is the key pair; Certificate.Leaf is set.
	Certificate *tls.Certificate
	// CAPool holds exactly the certificates in CACerts.
	CAPool  *x509.CertPool
	CACerts []*x509.Certificate
	// Generation is 1 for the set read by New and grows by one with every
	// reload that changed the set.
	Generation uint64
	// LoadedAt is when this set was read.
	LoadedAt time.Time

	certPEM, keyPEM, caPEM []byte
}

// NotAfter is the expiry time of the certificate.
func (b *Bundle) NotAfter() time.Time { return b.Certificate.Leaf.NotAfter }

// CANotAfter is the earliest expiry time among the CAs.
func (b *Bundle) CANotAfter() time.Time {
	var t time.Time
	for _, c := range b.CACerts {
		if t.IsZero() || c.NotAfter.Before(t) {
			t = c.NotAfter
		}
	}
	return t
}

// Source is a key pair and CA pool read from a directory and kept current
// by Run. All its methods are safe for concurrent use.
type Source struct {
	dir  string
	opts options

	current atomic.Pointer[Bundle]

	// mu serialises reloads and guards the fields below.
	mu sync.Mutex
	// changed is closed, and replaced, whenever a new Bundle is published.
	changed chan struct{}
	// rejected remembers the last set that failed validation, so that the
	// same bad set is reported once, not on every re-read.
	rejected []byte

	metrics *metrics
}

// New reads and validates the files in dir. It fails if a file is missing
// or the set is not valid. Call Run to keep the Source current.
func New(dir string, opts ...Option) (*Source, error) {
	o := options{
		certFile: DefaultCertFile,
		keyFile:  DefaultKeyFile,
		caFile:   DefaultCAFile,
		resync:   DefaultResyncInterval,
		watch:    true,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.name == "" {
		o.name = dir
	}
	s := &Source{dir: dir, opts: o, changed: make(chan struct{})}
	s.metrics = newMetrics(s)
	b, err := s.read()
	if err != nil {
		return nil, err
	}
	b.Generation = 1
	s.current.Store(b)
	return s, nil
}

// Dir is the directory the Source reads.
func (s *Source) Dir() string { return s.dir }

// Current returns the current set. The certificate and the pool in one
// Bundle always belong to the same update.
func (s *Source) Current() *Bundle { return s.current.Load() }

// Certificate returns the current key pair.
func (s *Source) Certificate() *tls.Certificate { return s.current.Load().Certificate }

// CAPool returns the current CA pool. It holds only the CAs of the current
// ca.crt; CAs removed from the file are no longer trusted.
func (s *Source) CAPool() *x509.CertPool { return s.current.Load().CAPool }

// Generation returns the generation of the current set; see Bundle.
func (s *Source) Generation() uint64 { return s.current.Load().Generation }

// NotAfter returns the expiry time of the current certificate.
func (s *Source) NotAfter() time.Time { return s.current.Load().NotAfter() }

// Changed returns a channel that is closed when a set newer than the current
// one is published. Call it again after it fires to wait for the next one.
func (s *Source) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Reload re-reads the files now. It returns whether a new set was
// published, and an error if the files on disk do not form a valid set, in
// which case the previous set stays current.
func (s *Source) Reload() (bool, error) {
	changed, _, err := s.reload()
	return changed, err
}

// reload re-reads the files. fresh reports whether err is about a set not
// reported before.
func (s *Source) reload() (changed, fresh bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	certPEM, keyPEM, caPEM, readErr := s.readFiles()
	if readErr != nil {
		err = fmt.Errorf("tlsfiles: %s: %w", s.dir, readErr)
	}
	cur := s.current.Load()
	if err == nil && bytes.Equal(certPEM, cur.certPEM) && bytes.Equal(keyPEM, cur.keyPEM) && bytes.Equal(caPEM, cur.caPEM) {
		s.rejected = nil
		return false, false, nil
	}
	var b *Bundle
	if err == nil {
		b, err = s.parse(certPEM, keyPEM, caPEM)
	}
	if err != nil {
		// Identify a bad set by its content, or by the error when a file
		// could not be read at all.
		var key []byte
		if readErr != nil {
			key = []byte("read error: " + readErr.Error())
		} else {
			key = bytes.Join([][]byte{certPEM, keyPEM, caPEM}, []byte{0})
		}
		fresh = !bytes.Equal(key, s.rejected)
		if fresh {
			s.rejected = key
			s.metrics.reloads.WithLabelValues(resultError).Inc()
		}
		return false, fresh, err
	}
	s.rejected = nil
	b.Generation = cur.Generation + 1
	s.metrics.reloads.WithLabelValues(resultSuccess).Inc()
	s.current.Store(b)
	close(s.changed)
	s.changed = make(chan struct{})
	return true, false, nil
}

// Run keeps the Source current until ctx is done: it re-reads the files
// shortly after any file system event in the directory, and every resync
// interval. A set that fails validation is logged once and ignored. Run
// returns nil when ctx is done. If the watcher cannot be started, Run logs
// why and relies on the periodic re-read.
func (s *Source) Run(ctx context.Context) error {
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "dir", s.dir)

	var events <-chan fsnotify.Event
	var watchErrs <-chan error
	var watcher *fsnotify.Watcher
	if s.opts.watch {
		w, err := fsnotify.NewWatcher()
		if err == nil {
			err = w.Add(s.dir)
			if err != nil {
				_ = w.Close()
			}
		}
		if err != nil {
			logger.Error(err, "Cannot watch TLS files, relying on periodic re-read", "resyncInterval", s.opts.resync)
		} else {
			watcher = w
			defer func() { _ = w.Close() }()
			events, watchErrs = w.Events, w.Errors
		}
	}

	var tick <-chan time.Time
	if s.opts.resync > 0 {
		t := time.NewTicker(s.opts.resync)
		defer t.Stop()
		tick = t.C
	}
	// pending fires debounce after the last event; it starts stopped.
	pending := time.NewTimer(time.Hour)
	pending.Stop()
	defer pending.Stop()

	// Catch anything that changed between New and the watch being set up.
	s.reloadAndLog(logger)

	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			logger.V(5).Info("TLS directory event", "event", ev.String())
			pending.Reset(debounce)
		case err, ok := <-watchErrs:
			if !ok {
				watchErrs = nil
				continue
			}
			logger.Error(err, "Watching TLS files")
			pending.Reset(debounce)
		case <-pending.C:
			s.reloadAndLog(logger)
		case <-tick:
			if watcher != nil && len(watcher.WatchList()) == 0 {
				// The directory was removed and re-created; watch it anew.
				if err := watcher.Add(s.dir); err == nil {
					logger.V(2).Info("Watching TLS directory again")
				}
			}
			s.reloadAndLog(logger)
		}
	}
}

func (s *Source) reloadAndLog(logger klog.Logger) {
	changed, fresh, err := s.reload()
	switch {
	case err != nil && fresh:
		cur := s.Current()
		logger.Error(err, "Rejected new TLS files, keeping the previous set", "generation", cur.Generation, "notAfter", cur.NotAfter())
	case changed:
		b := s.Current()
		logger.Info("Loaded new TLS files", "generation", b.Generation, "subject", b.Certificate.Leaf.Subject.String(),
			"notAfter", b.NotAfter(), "caCount", len(b.CACerts))
		if time.Now().After(b.NotAfter()) {
			logger.Info("The loaded TLS certificate has expired", "notAfter", b.NotAfter())
		}
	}
}

// dataLink is the symlink the kubelet swaps atomically on every update of
// a projected volume.
const dataLink = "..data"

// readFiles reads the three files. In a kubelet-managed directory, a read
// that overlapped an update (..data changed meanwhile) is retried, so the
// files always come from one update.
func (s *Source) readFiles() (certPEM, keyPEM, caPEM []byte, err error) {
	link := filepath.Join(s.dir, dataLink)
	for attempt := 1; ; attempt++ {
		before, _ := os.Readlink(link)
		certPEM, keyPEM, caPEM, err = s.readFilesOnce()
		after, _ := os.Readlink(link)
		if before == after || attempt == 3 {
			return certPEM, keyPEM, caPEM, err
		}
	}
}

func (s *Source) readFilesOnce() (certPEM, keyPEM, caPEM []byte, err error) {
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(s.dir, name))
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		return b, nil
	}
	if certPEM, err = read(s.opts.certFile); err != nil {
		return certPEM, keyPEM, caPEM, err
	}
	if keyPEM, err = read(s.opts.keyFile); err != nil {
		return certPEM, keyPEM, caPEM, err
	}
	caPEM, err = read(s.opts.caFile)
	return certPEM, keyPEM, caPEM, err
}

func (s *Source) read() (*Bundle, error) {
	certPEM, keyPEM, caPEM, err := s.readFiles()
	if err != nil {
		return nil, fmt.Errorf("tlsfiles: %s: %w", s.dir, err)
	}
	return s.parse(certPEM, keyPEM, caPEM)
}

// parse validates one set of files.
func (s *Source) parse(certPEM, keyPEM, caPEM []byte) (*Bundle, error) {
	o := s.opts
	fail := func(format string, args ...any) (*Bundle, error) {
		return nil, fmt.Errorf("tlsfiles: %s: "+format, append([]any{s.dir}, args...)...)
	}
	certs, err := parseCertificates(certPEM)
	if err != nil {
		return fail("%s: %w", o.certFile, err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fail("%s and %s do not form a key pair: %w", o.certFile, o.keyFile, err)
	}
	if pair.Leaf == nil {
		pair.Leaf = certs[0]
	}
	cas, err := parseCertificates(caPEM)
	if err != nil {
		return fail("%s: %w", o.caFile, err)
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c)
	}
	if o.verifyLeaf {
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		if _, err := pair.Leaf.Verify(x509.VerifyOptions{
			Roots:         pool,
			Intermediates: inter,
			CurrentTime:   pair.Leaf.NotBefore.Add(time.Second),
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		}); err != nil {
			return fail("%s is not issued by a CA in %s: %w", o.certFile, o.caFile, err)
		}
	}
	return &Bundle{
		Certificate: &pair,
		CAPool:      pool,
		CACerts:     cas,
		LoadedAt:    time.Now(),
		certPEM:     certPEM,
		keyPEM:      keyPEM,
		caPEM:       caPEM,
	}, nil
}

// parseCertificates parses every CERTIFICATE block of a PEM file. It fails
// on a file without certificates and on trailing bytes that are not PEM,
// which is what a truncated (half-written) file looks like.
func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("trailing data that is not PEM (truncated file?)")
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block found")
	}
	return certs, nil
}
