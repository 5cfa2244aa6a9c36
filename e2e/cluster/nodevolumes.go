package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Timings of node pods' volumes.
const (
	// tokenRenewMax is the longest a projected ServiceAccount token is kept
	// before it is renewed (kubelet: 80% of its lifetime, at most 24 h).
	tokenRenewMax = 24 * time.Hour
	// volumeRetry is how soon a volume whose sources are missing, or whose
	// token request failed, is tried again (it is also re-tried whenever a
	// Secret or ConfigMap of the pod's namespace changes).
	volumeRetry = time.Second
)

// podVolume is one volume of a node pod: a directory under the pod's
// directory, projected (secret, configMap, downwardAPI and projected
// volumes, with kubelet's atomic writer) and re-projected when its sources
// change, or left as it is (emptyDir).
type podVolume struct {
	name string
	dir  string
	// compute returns the files of the volume, or an error while a source
	// is missing; nil for an emptyDir.
	compute func() (map[string][]byte, error)
	tokens  []*volumeToken

	kick      chan struct{}
	ready     chan struct{}
	readyOnce sync.Once
	last      map[string][]byte
}

// volumeToken is a ServiceAccount token source of a projected volume.
type volumeToken struct {
	audience string
	ttl      int64
	path     string

	token   []byte
	renewAt time.Time
}

// newPodVolume prepares a volume of p; unsupported kinds are an error.
func newPodVolume(p *NodePod, v corev1.Volume) (*podVolume, error) {
	vol := &podVolume{
		name:  v.Name,
		dir:   filepath.Join(p.Dir, "volumes", v.Name),
		kick:  make(chan struct{}, 1),
		ready: make(chan struct{}),
	}
	switch {
	case v.EmptyDir != nil:
	case v.Secret != nil:
		s := v.Secret
		vol.compute = func() (map[string][]byte, error) {
			return p.secretFiles(s.SecretName, s.Items, s.Optional)
		}
	case v.ConfigMap != nil:
		cm := v.ConfigMap
		vol.compute = func() (map[string][]byte, error) {
			return p.configMapFiles(cm.Name, cm.Items, cm.Optional)
		}
	case v.DownwardAPI != nil:
		items := v.DownwardAPI.Items
		vol.compute = func() (map[string][]byte, error) { return p.downwardAPIFiles(items) }
	case v.Projected != nil:
		var parts []func() (map[string][]byte, error)
		for _, src := range v.Projected.Sources {
			switch {
			case src.Secret != nil:
				s := src.Secret
				parts = append(parts, func() (map[string][]byte, error) { return p.secretFiles(s.Name, s.Items, s.Optional) })
			case src.ConfigMap != nil:
				cm := src.ConfigMap
				parts = append(parts, func() (map[string][]byte, error) { return p.configMapFiles(cm.Name, cm.Items, cm.Optional) })
			case src.DownwardAPI != nil:
				items := src.DownwardAPI.Items
				parts = append(parts, func() (map[string][]byte, error) { return p.downwardAPIFiles(items) })
			case src.ServiceAccountToken != nil:
				t := &volumeToken{audience: src.ServiceAccountToken.Audience, ttl: 3600, path: src.ServiceAccountToken.Path}
				if src.ServiceAccountToken.ExpirationSeconds != nil {
					t.ttl = *src.ServiceAccountToken.ExpirationSeconds
				}
				vol.tokens = append(vol.tokens, t)
				parts = append(parts, func() (map[string][]byte, error) {
					if t.token == nil {
						return nil, errors.New("no ServiceAccount token yet")
					}
					return map[string][]byte{t.path: t.token}, nil
				})
			default:
				return nil, fmt.Errorf("volume %s: unsupported projected source (the node supports secret, configMap, downwardAPI and serviceAccountToken)", v.Name)
			}
		}
		vol.compute = func() (map[string][]byte, error) {
			all := map[string][]byte{}
			for _, part := range parts {
				files, err := part()
				if err != nil {
					return nil, err
				}
				maps.Copy(all, files)
			}
			return all, nil
		}
	default:
		return nil, fmt.Errorf("volume %s: unsupported type (the node supports emptyDir, secret, configMap, downwardAPI and projected)", v.Name)
	}
	return vol, nil
}

// run projects the volume, then re-projects it whenever it is kicked (a
// Secret or ConfigMap of the namespace changed) or a token is due, until
// ctx is done.
func (v *podVolume) run(ctx context.Context, p *NodePod) {
	if err := os.MkdirAll(v.dir, 0o755); err != nil {
		p.logf("Volume %s: %v", v.name, err)
		return
	}
	if v.compute == nil {
		v.readyOnce.Do(func() { close(v.ready) })
		return
	}
	lastErr := ""
	for {
		next := tokenRenewMax
		failed := false
		for _, t := range v.tokens {
			if time.Now().After(t.renewAt) {
				if err := t.renew(ctx, p); err != nil {
					if ctx.Err() != nil {
						return
					}
					p.logf("Volume %s: %v", v.name, err)
					failed = true
					continue
				}
			}
			next = min(next, time.Until(t.renewAt))
		}
		files, err := v.compute()
		if err == nil && (v.last == nil || !mapsEqual(files, v.last)) {
			err = projectFiles(v.dir, files)
			if err == nil {
				v.last = files
				v.readyOnce.Do(func() { close(v.ready) })
			}
		}
		if err != nil {
			failed = true
			if err.Error() != lastErr {
				p.logf("Volume %s: %v", v.name, err)
			}
			lastErr = err.Error()
		} else {
			lastErr = ""
		}
		if failed {
			next = volumeRetry
		}
		timer := time.NewTimer(next)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-v.kick:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// renew requests a token bound to the pod, as kubelet does.
func (t *volumeToken) renew(ctx context.Context, p *NodePod) error {
	pod := p.object()
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: ptrTo(t.ttl),
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if t.audience != "" {
		req.Spec.Audiences = []string{t.audience}
	}
	ctx, cancel := context.WithTimeout(ctx, podAPITimeout)
	defer cancel()
	tr, err := p.node.cluster.Client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("requesting a token of ServiceAccount %s/%s: %w", pod.Namespace, sa, err)
	}
	now := time.Now()
	t.token = []byte(tr.Status.Token)
	t.renewAt = now.Add(min(tr.Status.ExpirationTimestamp.Sub(now)*4/5, tokenRenewMax))
	return nil
}

// secretFiles returns the files of a Secret source.
func (p *NodePod) secretFiles(name string, items []corev1.KeyToPath, optional *bool) (map[string][]byte, error) {
	s, err := p.node.secrets.Secrets(p.Namespace).Get(name)
	if apierrors.IsNotFound(err) && optional != nil && *optional {
		return map[string][]byte{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("getting Secret %s/%s: %w", p.Namespace, name, err)
	}
	return keyFiles("Secret "+p.Namespace+"/"+name, s.Data, items, optional)
}

// configMapFiles returns the files of a ConfigMap source.
func (p *NodePod) configMapFiles(name string, items []corev1.KeyToPath, optional *bool) (map[string][]byte, error) {
	cm, err := p.node.configMaps.ConfigMaps(p.Namespace).Get(name)
	if apierrors.IsNotFound(err) && optional != nil && *optional {
		return map[string][]byte{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("getting ConfigMap %s/%s: %w", p.Namespace, name, err)
	}
	data := maps.Clone(cm.BinaryData)
	if data == nil {
		data = map[string][]byte{}
	}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	return keyFiles("ConfigMap "+p.Namespace+"/"+name, data, items, optional)
}

// keyFiles maps the keys of data to files: all of them, or the items.
func keyFiles(what string, data map[string][]byte, items []corev1.KeyToPath, optional *bool) (map[string][]byte, error) {
	if len(items) == 0 {
		return maps.Clone(data), nil
	}
	files := map[string][]byte{}
	for _, item := range items {
		value, ok := data[item.Key]
		if !ok {
			if optional != nil && *optional {
				continue
			}
			return nil, fmt.Errorf("%s has no key %q", what, item.Key)
		}
		files[item.Path] = value
	}
	return files, nil
}

// downwardAPIFiles returns the files of downward API items.
func (p *NodePod) downwardAPIFiles(items []corev1.DownwardAPIVolumeFile) (map[string][]byte, error) {
	pod := p.object()
	files := map[string][]byte{}
	for _, item := range items {
		var value string
		var err error
		switch {
		case item.FieldRef != nil:
			value, err = p.fieldValue(pod, item.FieldRef.FieldPath)
		case item.ResourceFieldRef != nil:
			value, err = p.resourceValue(pod, item.ResourceFieldRef.ContainerName, item.ResourceFieldRef)
		}
		if err != nil {
			return nil, err
		}
		files[item.Path] = []byte(value)
	}
	return files, nil
}
