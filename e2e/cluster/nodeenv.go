package cluster

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
)

// containerEnv returns a container's environment as kubelet builds it:
// the Kubernetes service variables (the API server, for in-cluster
// configuration), HOSTNAME, then envFrom, then env (with $(VAR) references
// to earlier variables expanded). Service links of other Services are not
// set: their ClusterIPs are unroutable here.
func (p *NodePod) containerEnv(pod *corev1.Pod, c corev1.Container) ([]string, error) {
	api := p.node.cluster.APIServerAddr
	host, port := api.Addr().String(), strconv.Itoa(int(api.Port()))
	var names []string
	values := map[string]string{}
	set := func(name, value string) {
		if _, ok := values[name]; !ok {
			names = append(names, name)
		}
		values[name] = value
	}
	set("PATH", os.Getenv("PATH"))
	set("HOME", "/root")
	set("HOSTNAME", pod.Name)
	set("KUBERNETES_SERVICE_HOST", host)
	set("KUBERNETES_SERVICE_PORT", port)
	set("KUBERNETES_SERVICE_PORT_HTTPS", port)
	set("KUBERNETES_PORT", "tcp://"+host+":"+port)
	set("KUBERNETES_PORT_"+port+"_TCP", "tcp://"+host+":"+port)
	set("KUBERNETES_PORT_"+port+"_TCP_PROTO", "tcp")
	set("KUBERNETES_PORT_"+port+"_TCP_ADDR", host)
	set("KUBERNETES_PORT_"+port+"_TCP_PORT", port)

	for _, from := range c.EnvFrom {
		var data map[string]string
		switch {
		case from.ConfigMapRef != nil:
			cm, err := p.node.configMaps.ConfigMaps(pod.Namespace).Get(from.ConfigMapRef.Name)
			if apierrors.IsNotFound(err) && from.ConfigMapRef.Optional != nil && *from.ConfigMapRef.Optional {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("envFrom ConfigMap %s: %w", from.ConfigMapRef.Name, err)
			}
			data = cm.Data
		case from.SecretRef != nil:
			s, err := p.node.secrets.Secrets(pod.Namespace).Get(from.SecretRef.Name)
			if apierrors.IsNotFound(err) && from.SecretRef.Optional != nil && *from.SecretRef.Optional {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("envFrom Secret %s: %w", from.SecretRef.Name, err)
			}
			data = map[string]string{}
			for k, v := range s.Data {
				data[k] = string(v)
			}
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if name := from.Prefix + k; envName.MatchString(name) {
				set(name, data[k])
			}
		}
	}

	lookup := func(name string) (string, bool) { v, ok := values[name]; return v, ok }
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expandVars(e.Value, lookup))
			continue
		}
		var value string
		var err error
		switch from := e.ValueFrom; {
		case from.FieldRef != nil:
			value, err = p.fieldValue(pod, from.FieldRef.FieldPath)
		case from.ResourceFieldRef != nil:
			value, err = p.resourceValue(pod, c.Name, from.ResourceFieldRef)
		case from.SecretKeyRef != nil:
			ref := from.SecretKeyRef
			optional := ref.Optional != nil && *ref.Optional
			s, getErr := p.node.secrets.Secrets(pod.Namespace).Get(ref.Name)
			switch {
			case apierrors.IsNotFound(getErr) && optional:
				continue
			case getErr != nil:
				err = fmt.Errorf("env %s: Secret %s: %w", e.Name, ref.Name, getErr)
			default:
				v, ok := s.Data[ref.Key]
				if !ok && optional {
					continue
				}
				if !ok {
					err = fmt.Errorf("env %s: Secret %s has no key %q", e.Name, ref.Name, ref.Key)
				}
				value = string(v)
			}
		case from.ConfigMapKeyRef != nil:
			ref := from.ConfigMapKeyRef
			optional := ref.Optional != nil && *ref.Optional
			cm, getErr := p.node.configMaps.ConfigMaps(pod.Namespace).Get(ref.Name)
			switch {
			case apierrors.IsNotFound(getErr) && optional:
				continue
			case getErr != nil:
				err = fmt.Errorf("env %s: ConfigMap %s: %w", e.Name, ref.Name, getErr)
			default:
				v, ok := cm.Data[ref.Key]
				if !ok && optional {
					continue
				}
				if !ok {
					err = fmt.Errorf("env %s: ConfigMap %s has no key %q", e.Name, ref.Name, ref.Key)
				}
				value = v
			}
		default:
			err = fmt.Errorf("env %s: unsupported valueFrom", e.Name)
		}
		if err != nil {
			return nil, err
		}
		set(e.Name, value)
	}
	env := make([]string, 0, len(names))
	for _, name := range names {
		env = append(env, name+"="+values[name])
	}
	return env, nil
}

// fieldValue returns a downward API field of the pod.
func (p *NodePod) fieldValue(pod *corev1.Pod, path string) (string, error) {
	host := p.Host()
	podIP := ""
	if host != nil {
		podIP = host.Addr.String()
	}
	hostIP := p.node.cluster.Network.Gateway.String()
	if key, ok := strings.CutPrefix(path, "metadata.labels['"); ok {
		return pod.Labels[strings.TrimSuffix(key, "']")], nil
	}
	if key, ok := strings.CutPrefix(path, "metadata.annotations['"); ok {
		return pod.Annotations[strings.TrimSuffix(key, "']")], nil
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return p.node.Name, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return podIP, nil
	case "status.hostIP", "status.hostIPs":
		return hostIP, nil
	}
	return "", fmt.Errorf("unsupported fieldRef %q", path)
}

// formatMap formats labels or annotations as the downward API does.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q\n", k, m[k])
	}
	return b.String()
}

// resourceValue returns a resource of a container (its limit, or the
// node's capacity when it has none), divided by the divisor and rounded
// up, as kubelet does.
func (p *NodePod) resourceValue(pod *corev1.Pod, containerName string, ref *corev1.ResourceFieldSelector) (string, error) {
	if ref.ContainerName != "" {
		containerName = ref.ContainerName
	}
	all := slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers)
	i := slices.IndexFunc(all, func(c corev1.Container) bool { return c.Name == containerName })
	if i < 0 {
		return "", fmt.Errorf("resourceFieldRef: no container %q", containerName)
	}
	resources := all[i].Resources
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok {
		return "", fmt.Errorf("unsupported resourceFieldRef %q", ref.Resource)
	}
	q, ok := resources.Limits[corev1.ResourceName(name)]
	if kind == "requests" {
		// A missing request defaults to the limit.
		if r, found := resources.Requests[corev1.ResourceName(name)]; found {
			q, ok = r, true
		} else if !ok {
			q, ok = resource.Quantity{}, true
		}
	}
	if !ok {
		switch corev1.ResourceName(name) {
		case corev1.ResourceCPU:
			q = *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI)
		case corev1.ResourceMemory:
			q = *resource.NewQuantity(hostMemory(), resource.BinarySI)
		case corev1.ResourceEphemeralStorage:
			q = resource.MustParse("100Gi")
		}
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if corev1.ResourceName(name) == corev1.ResourceCPU {
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10), nil
	}
	return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10), nil
}

// expandVars expands $(VAR) references as Kubernetes does: an unknown
// variable stays as it is, and $$ is a literal $.
func expandVars(input string, lookup func(string) (string, bool)) string {
	var b strings.Builder
	for i := 0; i < len(input); i++ {
		if input[i] == '$' && i+1 < len(input) {
			switch input[i+1] {
			case '$':
				b.WriteByte('$')
				i++
				continue
			case '(':
				if end := strings.IndexByte(input[i+2:], ')'); end >= 0 {
					name := input[i+2 : i+2+end]
					if v, ok := lookup(name); ok {
						b.WriteString(v)
					} else {
						b.WriteString(input[i : i+3+end])
					}
					i += 2 + end
					continue
				}
			}
		}
		b.WriteByte(input[i])
	}
	return b.String()
}
