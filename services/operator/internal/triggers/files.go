package triggers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// MaxFilePathSize bounds a filePath file: credentials, not data.
const MaxFilePathSize = 1 << 20

// DefaultFileCheckPeriod is how often WatchFiles looks at the filePath
// files that resolutions read.
const DefaultFileCheckPeriod = 5 * time.Second

// versionUnreadable is the version of a file that exists but cannot be
// read (or leads outside the root): stable, so an unreadable file does not
// invalidate its triggers at every check.
const versionUnreadable = "\x00unreadable"

// fileRoot reads ClusterTriggerAuthentications' filePath files under dir.
type fileRoot struct{ dir string }

// read returns the content of rel under the root and its version (a hash
// of the content; versionAbsent when it does not exist). The file is
// opened through an os.Root, so neither ".." nor a symbolic link can lead
// outside the directory; links inside it (a mounted Secret's ..data) are
// followed.
func (f *fileRoot) read(rel string) ([]byte, string, error) {
	root, err := os.OpenRoot(f.dir)
	if err != nil {
		return nil, versionUnreadable, fmt.Errorf("opening the root directory for credential files: %w", err)
	}
	defer root.Close()
	file, err := root.Open(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, versionAbsent, fmt.Errorf("no such file under %s", f.dir)
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is in the caller's message already
		}
		return nil, versionUnreadable, fmt.Errorf("cannot be opened under %s: %w", f.dir, err)
	}
	defer file.Close()
	data, err := io.ReadAll(io.LimitReader(file, MaxFilePathSize+1))
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, versionUnreadable, fmt.Errorf("cannot be read: %w", err)
	}
	sum := sha256.Sum256(data)
	version := "sha256:" + hex.EncodeToString(sum[:])
	if len(data) > MaxFilePathSize {
		return nil, version, fmt.Errorf("is larger than %d bytes", MaxFilePathSize)
	}
	return data, version, nil
}

// fileParams reads the parameters of a ClusterTriggerAuthentication's
// filePath: a file under the root directory holding a JSON object of
// strings. Errors never quote the file's content.
func (rs *resolution) fileParams(rel string) (map[string]string, error) {
	files := rs.r.files
	if files == nil {
		return nil, errors.New("the operator has no root directory for credential files (--filepath-auth-root-path)")
	}
	if !filepath.IsLocal(rel) {
		return nil, errors.New("must be a relative path inside the operator's root directory for credential files, without \"..\"")
	}
	rel = filepath.Clean(rel)
	done := rs.reading(Ref{Kind: RefFile, Name: rel})
	data, version, err := files.read(rel)
	done(version)
	if err != nil {
		return nil, err
	}
	return parseParamsFile(data)
}

// parseParamsFile decodes a JSON object of string parameters. Its errors
// say where the content is wrong, never what it holds: a syntax error's
// offset, a parameter whose value is not a string.
func parseParamsFile(data []byte) (map[string]string, error) {
	var raw map[string]any
	err := json.Unmarshal(data, &raw)
	var syntax *json.SyntaxError
	switch {
	case errors.As(err, &syntax):
		return nil, fmt.Errorf("is not valid JSON (error at byte %d); want a JSON object of string parameters", syntax.Offset)
	case err != nil || raw == nil:
		return nil, errors.New("is not a JSON object of string parameters")
	}
	params := make(map[string]string, len(raw))
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, ok := raw[k].(string)
		if !ok {
			return nil, fmt.Errorf("parameter %q is not a string; want a JSON object of string parameters", k)
		}
		params[k] = v
	}
	return params, nil
}

// WatchFiles checks, every period until ctx is done, the filePath files
// that cached resolutions read, and tells c of those whose content
// changed (or that appeared or went), so their triggers are built again
// with the new parameters. Only the files some trigger uses are read, a
// few small files per period; a file watch (inotify) would need to follow
// the symbolic links a mounted Secret swaps on every update. It returns
// at once when r has no root directory for credential files.
func WatchFiles(ctx context.Context, c *Cache, r *AuthResolver, period time.Duration) {
	if r.files == nil {
		return
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		checkFiles(c, r)
	}
}

// checkFiles tells c the version of every filePath file a cached
// resolution read.
func checkFiles(c *Cache, r *AuthResolver) {
	for _, ref := range c.Refs(RefFile) {
		_, version, _ := r.files.read(ref.Name)
		c.Changed(ref, version)
	}
}
