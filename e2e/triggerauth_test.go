package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/e2e/cluster"
	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	kedaclient "github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned"
)

// TestTriggerAuthenticationRotation runs the operator (at --v=6, which
// logs every API request it makes), the metrics-apiserver and a Redis
// with a password, and rotates the credentials of triggers under them,
// without restarting anything:
//
//   - (a) ScaledObject worker, authenticated through TriggerAuthentication
//     redis-auth (Secret redis-auth), is Ready and scales; ScaledJob
//     drainer uses the same TriggerAuthentication, ScaledObject filer a
//     ClusterTriggerAuthentication whose filePath file (a mounted Secret)
//     holds an ACL user's name and password. The authentication objects'
//     status lists name their users. In steady state the operator sends no
//     request for the Secret;
//   - (f) the file's password is made wrong: filer's trigger fails (its
//     scalers were built again from the file), then recovers once the file
//     is restored;
//   - (b) the Secret is rotated to a wrong password while Redis still
//     wants the old one: the triggers fail (the new credentials are used)
//     and no connection authenticated with the old password is left;
//   - (c) Redis's password changes and the Secret follows: the operator
//     recovers within a bounded time, measured;
//   - (d) the Secret is deleted: Ready False naming the Secret and key;
//     restored: Ready again.
//
// After each step, every value used as a password is looked for in the
// operator's and metrics-apiserver's logs, every Event, the ScaledObjects,
// ScaledJob, TriggerAuthentication, ClusterTriggerAuthentication and HPAs:
// none may appear.
func TestTriggerAuthenticationRotation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c := startCluster(ctx, t, cluster.Options{CertManager: true})
	createNamespace(ctx, t, c, operatorNamespace)
	issueCertificates(ctx, t, c)

	const ns = "rotation"
	suffix := make([]byte, 8)
	_, _ = rand.Read(suffix)
	pw := func(what string) string { return "e2e-" + what + "-" + hex.EncodeToString(suffix) }
	first, wrong, second, fileWrong := pw("first"), pw("wrong"), pw("second"), pw("file-wrong")
	var used []string // every password used so far

	// The credential files of the ClusterTriggerAuthentication: Secret
	// redis-files of the operator's namespace, projected (as kubelet does,
	// through ..data) into the operator's --filepath-auth-root-path.
	fileCreds := func(password string) map[string][]byte {
		b, _ := json.Marshal(map[string]string{"username": "filer", "password": password})
		return map[string][]byte{"creds.json": b}
	}
	files := c.Client.CoreV1().Secrets(operatorNamespace)
	mustCreate(t, func() error {
		_, err := files.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "redis-files"}, Data: fileCreds(first)}, metav1.CreateOptions{})
		return err
	})
	used = append(used, first)
	filesDir := filepath.Join(t.TempDir(), "trigger-auth-files")
	operator := startOperator(ctx, t, c, "ebb-operator-tls", func(spec *cluster.PodSpec) {
		for i, a := range spec.Args {
			if strings.HasPrefix(a, "--v=") {
				spec.Args[i] = "--v=6"
			}
		}
		spec.Args = append(spec.Args, "--filepath-auth-root-path="+filesDir)
		spec.Secrets = append(spec.Secrets, cluster.SecretVolume{SecretName: "redis-files", Dir: filesDir})
	})
	metricsPod := startMetricsAPIServer(ctx, t, c)

	rdb := startRedis(ctx, t, c, ns, first)
	// An ACL user for the filePath trigger, so Redis tells its connections
	// from those authenticated through the TriggerAuthentication (user
	// default).
	if err := rdb.Do(ctx, "ACL", "SETUSER", "filer", "on", ">"+first, "~*", "&*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}

	keda, err := kedaclient.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	secrets := c.Client.CoreV1().Secrets(ns)
	setSecret := func(password string) time.Time {
		t.Helper()
		s, err := secrets.Get(ctx, "redis-auth", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.Data = map[string][]byte{"password": []byte(password)}
		if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		return time.Now()
	}
	mustCreate(t, func() error {
		_, err := secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "redis-auth"},
			Data: map[string][]byte{"password": []byte(first)}}, metav1.CreateOptions{})
		return err
	})
	mustCreate(t, func() error {
		_, err := keda.KedaV1alpha1().TriggerAuthentications(ns).Create(ctx, &v1alpha1.TriggerAuthentication{
			ObjectMeta: metav1.ObjectMeta{Name: "redis-auth"},
			Spec:       v1alpha1.TriggerAuthenticationSpec{SecretTargetRef: []v1alpha1.AuthSecretTargetRef{{Parameter: "password", Name: "redis-auth", Key: "password"}}},
		}, metav1.CreateOptions{})
		return err
	})
	mustCreate(t, func() error {
		_, err := keda.KedaV1alpha1().ClusterTriggerAuthentications().Create(ctx, &v1alpha1.ClusterTriggerAuthentication{
			ObjectMeta: metav1.ObjectMeta{Name: "redis-files"},
			Spec:       v1alpha1.TriggerAuthenticationSpec{FilePath: "creds.json"},
		}, metav1.CreateOptions{})
		return err
	})

	redisTrigger := func(list string, ref *v1alpha1.AuthenticationRef) []v1alpha1.ScaleTrigger {
		return []v1alpha1.ScaleTrigger{{Type: "redis", AuthenticationRef: ref, Metadata: map[string]string{
			"address": "redis." + ns + ".svc:6379", "listName": list, "listLength": "5",
		}}}
	}
	scaledObject := func(name, list string, ref *v1alpha1.AuthenticationRef) *v1alpha1.ScaledObject {
		createDeployment(ctx, t, c, ns, name, 1)
		return &v1alpha1.ScaledObject{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1alpha1.ScaledObjectSpec{
				ScaleTargetRef:  &v1alpha1.ScaleTarget{Name: name},
				PollingInterval: ptr.To[int32](2),
				MinReplicaCount: ptr.To[int32](1),
				MaxReplicaCount: ptr.To[int32](5),
				Advanced: &v1alpha1.AdvancedConfig{HorizontalPodAutoscalerConfig: &v1alpha1.HorizontalPodAutoscalerConfig{
					Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](0)}},
				}},
				Triggers: redisTrigger(list, ref),
			},
		}
	}
	sos := keda.KedaV1alpha1().ScaledObjects(ns)
	for _, so := range []*v1alpha1.ScaledObject{
		scaledObject("worker", "jobs", &v1alpha1.AuthenticationRef{Name: "redis-auth"}),
		scaledObject("filer", "files", &v1alpha1.AuthenticationRef{Name: "redis-files", Kind: v1alpha1.ClusterTriggerAuthenticationKind}),
	} {
		mustCreate(t, func() error { _, err := sos.Create(ctx, so, metav1.CreateOptions{}); return err })
	}
	sjs := keda.KedaV1alpha1().ScaledJobs(ns)
	mustCreate(t, func() error {
		_, err := sjs.Create(ctx, &v1alpha1.ScaledJob{
			ObjectMeta: metav1.ObjectMeta{Name: "drainer"},
			Spec: v1alpha1.ScaledJobSpec{
				PollingInterval: ptr.To[int32](2),
				MaxReplicaCount: ptr.To[int32](1),
				JobTargetRef: &batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "drain", Image: "registry.invalid/drain:1"}},
				}}},
				// An empty list: the ScaledJob polls, and runs no Job.
				Triggers: redisTrigger("drain", &v1alpha1.AuthenticationRef{Name: "redis-auth"}),
			},
		}, metav1.CreateOptions{})
		return err
	})

	// Observations.
	readMetric := func(ctx context.Context, so, metric string) (string, error) {
		body, err := c.Client.CoreV1().RESTClient().Get().
			AbsPath("/apis/external.metrics.k8s.io/v1beta1/namespaces", ns, metric).
			Param("labelSelector", v1alpha1.ScaledObjectNameLabel+"="+so).
			Do(ctx).Raw()
		if err != nil {
			return "", fmt.Errorf("%w: %s", err, body)
		}
		var list struct {
			Items []struct {
				Value string `json:"value"`
			} `json:"items"`
		}
		if err := json.Unmarshal(body, &list); err != nil || len(list.Items) != 1 {
			return "", fmt.Errorf("unexpected answer %s", body)
		}
		return list.Items[0].Value, nil
	}
	ready := func(name string) func(ctx context.Context) (v1alpha1.Condition, error) {
		return func(ctx context.Context) (v1alpha1.Condition, error) {
			so, err := sos.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return v1alpha1.Condition{}, err
			}
			return so.Status.Conditions.Ready(), nil
		}
	}
	jobReady := func(ctx context.Context) (v1alpha1.Condition, error) {
		sj, err := sjs.Get(ctx, "drainer", metav1.GetOptions{})
		if err != nil {
			return v1alpha1.Condition{}, err
		}
		return sj.Status.Conditions.Ready(), nil
	}
	// waitFor polls cond every 100 ms and returns how long it took.
	waitFor := func(what string, timeout time.Duration, cond func(context.Context) (bool, error)) time.Duration {
		t.Helper()
		start := time.Now()
		pollUntil(ctx, t, what, timeout, cond)
		return time.Since(start)
	}
	metricReads := func(so, metric string) func(context.Context) (bool, error) {
		return func(ctx context.Context) (bool, error) {
			_, err := readMetric(ctx, so, metric)
			return err == nil, err
		}
	}
	metricFails := func(so, metric string) func(context.Context) (bool, error) {
		return func(ctx context.Context) (bool, error) {
			_, err := readMetric(ctx, so, metric)
			return err != nil, nil
		}
	}
	condIs := func(get func(context.Context) (v1alpha1.Condition, error), status metav1.ConditionStatus, reason string, contains ...string) func(context.Context) (bool, error) {
		return func(ctx context.Context) (bool, error) {
			r, err := get(ctx)
			if err != nil || r.Status != status || (reason != "" && r.Reason != reason) {
				return false, fmt.Errorf("%v: Ready %s %s %q", err, r.Status, r.Reason, r.Message)
			}
			for _, s := range contains {
				if !strings.Contains(r.Message, s) {
					return false, fmt.Errorf("Ready message %q lacks %q", r.Message, s)
				}
			}
			return true, nil
		}
	}
	statusLists := func(kind, name, wantSOs, wantSJs string) func(context.Context) (bool, error) {
		return func(ctx context.Context) (bool, error) {
			var st v1alpha1.TriggerAuthenticationStatus
			if kind == "cta" {
				o, err := keda.KedaV1alpha1().ClusterTriggerAuthentications().Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return false, err
				}
				st = o.Status
			} else {
				o, err := keda.KedaV1alpha1().TriggerAuthentications(ns).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return false, err
				}
				st = o.Status
			}
			if st.ScaledObjects != wantSOs || st.ScaledJobs != wantSJs {
				return false, fmt.Errorf("status lists scaledobjects %q scaledjobs %q", st.ScaledObjects, st.ScaledJobs)
			}
			return true, nil
		}
	}
	// noSecrets looks for every password used so far wherever ebb writes.
	noSecrets := func(step string) {
		t.Helper()
		places := map[string][]byte{}
		for name, path := range map[string]string{"operator log": operator.Process.LogPath, "metrics-apiserver log": metricsPod.Process.LogPath} {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			places[name] = b
		}
		add := func(name string, obj any, err error) {
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			b, err := json.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			places[name] = b
		}
		coreEvents, err := c.Client.CoreV1().Events(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
		add("events (core/v1)", coreEvents, err)
		newEvents, err := c.Client.EventsV1().Events(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
		add("events (events.k8s.io/v1)", newEvents, err)
		soList, err := sos.List(ctx, metav1.ListOptions{})
		add("ScaledObjects", soList, err)
		sjList, err := sjs.List(ctx, metav1.ListOptions{})
		add("ScaledJobs", sjList, err)
		taList, err := keda.KedaV1alpha1().TriggerAuthentications(ns).List(ctx, metav1.ListOptions{})
		add("TriggerAuthentications", taList, err)
		ctaList, err := keda.KedaV1alpha1().ClusterTriggerAuthentications().List(ctx, metav1.ListOptions{})
		add("ClusterTriggerAuthentications", ctaList, err)
		hpaList, err := c.Client.AutoscalingV2().HorizontalPodAutoscalers(ns).List(ctx, metav1.ListOptions{})
		add("HPAs", hpaList, err)
		for where, b := range places {
			for _, v := range used {
				if c := bytes.Count(b, []byte(v)); c > 0 {
					t.Errorf("%s: a password used in this test appears %d times in the %s", step, c, where)
				}
			}
		}
		t.Logf("%s: %d passwords looked for in %d places (operator log %d bytes, %d events): none found", step, len(used), len(places),
			len(places["operator log"]), len(coreEvents.Items)+len(newEvents.Items))
	}
	// secretGETs counts the operator's GET requests for Secrets (the
	// request log of --v=6) in its log from offset on.
	logSize := func() int64 {
		fi, err := os.Stat(operator.Process.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	secretGETs := func(from int64) (gets int, lines []string) {
		b, err := os.ReadFile(operator.Process.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b[from:]), "\n") {
			if strings.Contains(line, `verb="GET"`) && strings.Contains(line, "/secrets/") {
				gets++
				lines = append(lines, line)
			}
		}
		return gets, lines
	}
	// redisClients counts the connections from the operator's pod that
	// Redis has authenticated as user.
	redisClients := func(ctx context.Context, admin *redis.Client, user string) (int, error) {
		list, err := admin.ClientList(ctx).Result()
		if err != nil {
			return 0, err
		}
		n := 0
		for _, line := range strings.Split(list, "\n") {
			fields := map[string]string{}
			for _, f := range strings.Fields(line) {
				k, v, _ := strings.Cut(f, "=")
				fields[k] = v
			}
			host, _, _ := net.SplitHostPort(fields["addr"])
			if host == operator.Host.Addr.String() && fields["user"] == user {
				n++
			}
		}
		return n, nil
	}

	// (a) Ready, scaling, listed; no request for the Secret in steady state.
	waitFor("worker Ready", 3*time.Minute, condIs(ready("worker"), metav1.ConditionTrue, ""))
	waitFor("filer Ready (filePath)", time.Minute, condIs(ready("filer"), metav1.ConditionTrue, ""))
	waitFor("drainer Ready", time.Minute, condIs(jobReady, metav1.ConditionTrue, ""))
	items := make([]any, 10)
	for i := range items {
		items[i] = i
	}
	if err := rdb.RPush(ctx, "jobs", items...).Err(); err != nil {
		t.Fatal(err)
	}
	pushed := time.Now()
	waitFor("the HPA to scale worker from 1 to 2 on the authenticated trigger", 2*time.Minute, func(ctx context.Context) (bool, error) {
		d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "worker", metav1.GetOptions{})
		return err == nil && ptr.Deref(d.Spec.Replicas, 1) == 2, err
	})
	t.Logf("(a) worker scaled 1→2 %s after 10 items were pushed", time.Since(pushed).Round(time.Millisecond))
	waitFor("TriggerAuthentication redis-auth to list worker and drainer", 30*time.Second, statusLists("ta", "redis-auth", "worker", "drainer"))
	waitFor("ClusterTriggerAuthentication redis-files to list filer", 30*time.Second, statusLists("cta", "redis-files", "filer", ""))
	from := logSize()
	steady := 15 * time.Second
	time.Sleep(steady)
	if n, lines := secretGETs(from); n != 0 {
		t.Errorf("(a) the operator read Secrets %d times in %s of steady state (polling every 2 s, the HPA reading every 5 s):\n%s", n, steady, strings.Join(lines, "\n"))
	} else {
		t.Logf("(a) no Secret read by the operator in %s of steady state", steady)
	}
	noSecrets("(a) steady state")

	// (f) The filePath file's password goes wrong, then back.
	setFile := func(password string) time.Time {
		t.Helper()
		s, err := files.Get(ctx, "redis-files", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.Data = fileCreds(password)
		if _, err := files.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		return time.Now()
	}
	waitFor("filer's metric to read", time.Minute, metricReads("filer", "s0-redis-files"))
	used = append(used, fileWrong)
	setFile(fileWrong)
	took := waitFor("filer's trigger to fail with the wrong password from its file", time.Minute, metricFails("filer", "s0-redis-files"))
	t.Logf("(f) filePath file changed to a wrong password: filer's trigger failed %s later (Secret projection, then the 5 s file check)", took.Round(time.Millisecond))
	setFile(first)
	took = waitFor("filer's trigger to read again with the file restored", time.Minute, metricReads("filer", "s0-redis-files"))
	t.Logf("(f) filePath file restored: filer's metric read again %s later", took.Round(time.Millisecond))
	noSecrets("(f) filePath rotation")

	// (b) The Secret is rotated to a wrong password; Redis still wants the
	// first. Only scalers built anew use it.
	if n, err := redisClients(ctx, rdb, "default"); err != nil || n == 0 {
		t.Fatalf("(b) before: %d connections of the operator authenticated as default (%v), want some", n, err)
	}
	used = append(used, wrong)
	beforeRotation := logSize()
	rotated := setSecret(wrong)
	took = waitFor("worker's trigger to fail with the rotated (wrong) password", time.Minute, metricFails("worker", "s0-redis-jobs"))
	t.Logf("(b) Secret rotated to a wrong password: worker's metric failed %s later", took.Round(time.Millisecond))
	waitFor("no connection of the operator left authenticated with the old password", 30*time.Second, func(ctx context.Context) (bool, error) {
		n, err := redisClients(ctx, rdb, "default")
		return n == 0, err
	})
	t.Logf("(b) the old clients were closed %s after the rotation", time.Since(rotated).Round(time.Millisecond))
	// The request log is on, and the rotation was read (once per owner
	// resolved again): the steady state's zero above means something.
	if n, lines := secretGETs(beforeRotation); n == 0 || n > 6 {
		t.Errorf("(b) %d GETs of Secrets logged after the rotation, want one per ScaledObject or ScaledJob using it (2), a few at most:\n%s", n, strings.Join(lines, "\n"))
	} else {
		t.Logf("(b) the rotation was read with %d GETs of the Secret", n)
	}
	waitFor("worker Ready False: the HPA cannot read the metric", time.Minute, condIs(ready("worker"), metav1.ConditionFalse, "HPAMetricsUnavailable", "redis"))
	waitFor("drainer Ready False with a KEDAScalerFailed event", time.Minute, condIs(jobReady, metav1.ConditionFalse, "TriggerError"))
	pollUntil(ctx, t, "a KEDAScalerFailed event naming the Redis trigger", 30*time.Second, func(ctx context.Context) (bool, error) {
		evs, err := c.Client.EventsV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.Reason == "KEDAScalerFailed" && e.Regarding.Name == "drainer" && strings.Contains(e.Note, "redis") {
				t.Logf("(b) event: %s %s: %s", e.Type, e.Reason, e.Note)
				return true, nil
			}
		}
		return false, nil
	})
	r, _ := ready("worker")(ctx)
	t.Logf("(b) worker Ready %s %s: %s", r.Status, r.Reason, r.Message)
	noSecrets("(b) wrong password")

	// (c) Redis's password changes, and the Secret follows: recovery
	// without a restart.
	if err := rdb.ConfigSet(ctx, "requirepass", second).Err(); err != nil {
		t.Fatal(err)
	}
	used = append(used, second)
	admin := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr, Password: second})
	defer admin.Close()
	rotated = setSecret(second)
	waitFor("worker's metric to read with the new password", time.Minute, metricReads("worker", "s0-redis-jobs"))
	metricBack := time.Since(rotated)
	waitFor("worker Ready again", time.Minute, condIs(ready("worker"), metav1.ConditionTrue, ""))
	readyBack := time.Since(rotated)
	waitFor("drainer Ready again", time.Minute, condIs(jobReady, metav1.ConditionTrue, ""))
	jobBack := time.Since(rotated)
	t.Logf("(c) Redis and the Secret moved to a new password: worker's metric read %s, worker Ready %s, drainer Ready %s after the Secret update",
		metricBack.Round(time.Millisecond), readyBack.Round(time.Millisecond), jobBack.Round(time.Millisecond))
	if metricBack > 10*time.Second {
		t.Errorf("(c) the metric read again after %s, want within 10 s", metricBack)
	}
	if readyBack > 30*time.Second {
		t.Errorf("(c) Ready again after %s, want within 30 s (an HPA sync is 5 s)", readyBack)
	}
	if n, err := redisClients(ctx, admin, "default"); err != nil || n == 0 {
		t.Errorf("(c) %d connections of the operator authenticated with the new password (%v), want some", n, err)
	}
	noSecrets("(c) recovered")

	// (d) The Secret is deleted, then restored.
	if err := secrets.Delete(ctx, "redis-auth", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	waitFor("worker Ready False naming the Secret and key", time.Minute, condIs(ready("worker"), metav1.ConditionFalse, "TriggerAuthenticationFailed",
		"Secret "+ns+"/redis-auth", `key "password"`))
	t.Logf("(d) Secret deleted: worker Ready False %s later", time.Since(deleted).Round(time.Millisecond))
	r, _ = ready("worker")(ctx)
	t.Logf("(d) worker Ready %s %s: %s", r.Status, r.Reason, r.Message)
	waitFor("drainer Ready False naming the Secret", time.Minute, condIs(jobReady, metav1.ConditionFalse, "ScaledJobCheckFailed", "Secret "+ns+"/redis-auth"))
	pollUntil(ctx, t, "a TriggerAuthenticationFailed event on worker", 30*time.Second, func(ctx context.Context) (bool, error) {
		evs, err := c.Client.EventsV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.Reason == "TriggerAuthenticationFailed" && e.Regarding.Name == "worker" && e.Type == corev1.EventTypeWarning {
				return true, nil
			}
		}
		return false, nil
	})
	if _, err := c.Client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "keda-hpa-worker", metav1.GetOptions{}); err != nil {
		t.Errorf("(d) the HPA went with the Secret: %v", err)
	}
	noSecrets("(d) Secret deleted")
	mustCreate(t, func() error {
		_, err := secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "redis-auth"},
			Data: map[string][]byte{"password": []byte(second)}}, metav1.CreateOptions{})
		return err
	})
	restored := time.Now()
	waitFor("worker's metric to read with the restored Secret", time.Minute, metricReads("worker", "s0-redis-jobs"))
	metricBack = time.Since(restored)
	waitFor("worker Ready after the restore", time.Minute, condIs(ready("worker"), metav1.ConditionTrue, ""))
	readyBack = time.Since(restored)
	waitFor("drainer Ready after the restore", time.Minute, condIs(jobReady, metav1.ConditionTrue, ""))
	t.Logf("(d) Secret restored: worker's metric read %s, worker Ready %s, drainer Ready %s after it",
		metricBack.Round(time.Millisecond), readyBack.Round(time.Millisecond), time.Since(restored).Round(time.Millisecond))
	noSecrets("(d) Secret restored")

	// The status lists follow users that go.
	if err := sjs.Delete(ctx, "drainer", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := sos.Delete(ctx, "filer", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("TriggerAuthentication redis-auth to drop drainer", 30*time.Second, statusLists("ta", "redis-auth", "worker", ""))
	waitFor("ClusterTriggerAuthentication redis-files to drop filer", 30*time.Second, statusLists("cta", "redis-files", "", ""))
	worker, err := sos.Get(ctx, "worker", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	worker.Spec.Triggers[0].AuthenticationRef = &v1alpha1.AuthenticationRef{Name: "redis-files", Kind: v1alpha1.ClusterTriggerAuthenticationKind}
	if _, err := sos.Update(ctx, worker, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("worker to move from redis-auth to redis-files in the lists", 30*time.Second, func(ctx context.Context) (bool, error) {
		if ok, err := statusLists("ta", "redis-auth", "", "")(ctx); !ok {
			return false, err
		}
		return statusLists("cta", "redis-files", "worker", "")(ctx)
	})

	// One operator process throughout.
	log, err := os.ReadFile(operator.Process.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), "Starting ebb-operator"); n != 1 {
		t.Errorf("the operator started %d times, want once (no restart)", n)
	}
	noSecrets("end")
}
