package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/e2e/cluster"
	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	kedaclient "github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned"
)

// sjShellImage is the image of the Jobs that really run: the harness's
// node runs it as sh, so a Job's container is a shell command.
const sjShellImage = "e2e.invalid/sh"

// TestScaledJob runs the operator (with its chart's RBAC) against a real
// Redis and the real job controller and garbage collector:
//
//   - a ScaledJob whose pods never run (no node takes their image) gets
//     one Job per item of its Redis list (listLength 1), no more over
//     later polls, and never more than maxReplicaCount;
//   - changing its Job template (rollout immediate) replaces its running
//     Jobs with Jobs of the new generation;
//   - a ScaledJob whose Jobs the harness's node really runs (each pops an
//     item and succeeds or fails on it) ends with its finished Jobs pruned
//     to the history limits;
//   - deleting a ScaledJob deletes its Jobs through the garbage collector.
//
// Both read the Redis password through <key>FromEnv from their Job
// template's environment (a secretKeyRef), as KEDA resolves it.
func TestScaledJob(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	redisCLI, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli is not installed (make test installs it with hack/install-event-sources.sh): %v", err)
	}
	c := startCluster(ctx, t, cluster.Options{Images: map[string]string{sjShellImage: sh}})
	operator := startOperator(ctx, t, c, "")

	const ns, password = "jobs", "e2e-redis-jobs"
	rdb := startRedis(ctx, t, c, ns, password)
	keda, err := kedaclient.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, func() error {
		_, err := c.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "redis"},
			StringData: map[string]string{"password": password},
		}, metav1.CreateOptions{})
		return err
	})
	passwordEnv := corev1.EnvVar{Name: "REDIS_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "redis"}, Key: "password"}}}
	newScaledJob := func(name, list string, container corev1.Container, mutate func(*v1alpha1.ScaledJob)) *v1alpha1.ScaledJob {
		container.Env = append(container.Env, passwordEnv)
		sj := &v1alpha1.ScaledJob{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: v1alpha1.ScaledJobSpec{
				JobTargetRef: &batchv1.JobSpec{
					BackoffLimit: ptr.To[int32](0),
					Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
						RestartPolicy: corev1.RestartPolicyNever,
						Containers:    []corev1.Container{container},
					}},
				},
				PollingInterval: ptr.To[int32](1),
				Triggers: []v1alpha1.ScaleTrigger{{Type: "redis", Metadata: map[string]string{
					"address": "redis." + ns + ".svc:6379", "listName": list, "listLength": "1",
					"passwordFromEnv": "REDIS_PASSWORD",
				}}},
			},
		}
		mutate(sj)
		created, err := keda.KedaV1alpha1().ScaledJobs(ns).Create(ctx, sj, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return created
	}
	// jobsOf lists the Jobs of ScaledJob name by their label.
	jobsOf := func(ctx context.Context, name string) ([]batchv1.Job, error) {
		list, err := c.Client.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: v1alpha1.ScaledJobNameLabel + "=" + name})
		if err != nil {
			return nil, err
		}
		return list.Items, nil
	}
	countJobs := func(name string, want int) time.Duration {
		t.Helper()
		start := time.Now()
		pollUntil(ctx, t, fmt.Sprintf("%d Jobs of ScaledJob %s", want, name), 2*time.Minute, func(ctx context.Context) (bool, error) {
			jobs, err := jobsOf(ctx, name)
			if len(jobs) > want {
				t.Fatalf("ScaledJob %s has %d Jobs, more than the %d it may have", name, len(jobs), want)
			}
			return len(jobs) == want, err
		})
		return time.Since(start)
	}
	metrics := func(ctx context.Context) (map[string]float64, error) {
		return scrapeMetrics(ctx, operator.Host.Addr.String())
	}
	// afterPolls waits until the loop has polled at least n more times
	// (both ScaledJobs are polled every second), then checks that
	// ScaledJob name still has exactly want Jobs.
	afterPolls := func(n int, name string, want int) {
		t.Helper()
		before := pollFor(ctx, t, "the operator's metrics", time.Minute, metrics)["ebb_scaledjob_poll_duration_seconds_count"]
		pollUntil(ctx, t, fmt.Sprintf("%d more polls", n), time.Minute, func(ctx context.Context) (bool, error) {
			m, err := metrics(ctx)
			return err == nil && m["ebb_scaledjob_poll_duration_seconds_count"] >= before+float64(n), err
		})
		jobs, err := jobsOf(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) != want {
			t.Fatalf("After %d more polls ScaledJob %s has %d Jobs, want %d", n, name, len(jobs), want)
		}
	}

	// 1. Jobs whose pods stay Pending: one per item, capped.
	const maxReplicas = 8
	pendingSJ := newScaledJob("pending", "pending-items", corev1.Container{Name: "worker", Image: "registry.invalid/worker:1"},
		func(sj *v1alpha1.ScaledJob) { sj.Spec.MaxReplicaCount = ptr.To[int32](maxReplicas) })
	pollUntil(ctx, t, "ScaledJob pending Ready and not Active", time.Minute, func(ctx context.Context) (bool, error) {
		sj, err := keda.KedaV1alpha1().ScaledJobs(ns).Get(ctx, "pending", metav1.GetOptions{})
		return err == nil && sj.Status.Conditions.Ready().IsTrue() && sj.Status.Conditions.Active().IsFalse(), err
	})
	if err := rdb.RPush(ctx, "pending-items", "1", "2", "3", "4", "5").Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("5 items: 5 Jobs in %s", countJobs("pending", 5).Round(time.Millisecond))
	afterPolls(6, "pending", 5)
	sj, err := keda.KedaV1alpha1().ScaledJobs(ns).Get(ctx, "pending", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !sj.Status.Conditions.Active().IsTrue() || sj.Status.LastActiveTime == nil || !slices.Contains(sj.Finalizers, v1alpha1.Finalizer) {
		t.Errorf("ScaledJob pending: Active %+v, lastActiveTime %v, finalizers %v", sj.Status.Conditions.Active(), sj.Status.LastActiveTime, sj.Finalizers)
	}
	jobs, err := jobsOf(ctx, "pending")
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		owner := metav1.GetControllerOf(&j)
		if owner == nil || owner.UID != pendingSJ.UID || !strings.HasPrefix(j.Name, "pending-") ||
			j.Annotations[v1alpha1.ScaledJobGenerationAnnotation] != "1" || j.Spec.Template.Labels[v1alpha1.ScaledJobNameLabel] != "pending" {
			t.Errorf("Job %s: owner %+v, generation %q, template labels %v", j.Name, owner, j.Annotations[v1alpha1.ScaledJobGenerationAnnotation], j.Spec.Template.Labels)
		}
	}
	if err := rdb.RPush(ctx, "pending-items", "6", "7", "8", "9", "10", "11", "12").Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("12 items, maxReplicaCount %d: %d Jobs in %s", maxReplicas, maxReplicas, countJobs("pending", maxReplicas).Round(time.Millisecond))
	afterPolls(6, "pending", maxReplicas)

	// 2. Rollout immediate: a new template replaces the running Jobs.
	start := time.Now()
	sj, err = keda.KedaV1alpha1().ScaledJobs(ns).Get(ctx, "pending", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sj.Spec.JobTargetRef.Template.Spec.Containers[0].Image = "registry.invalid/worker:2"
	if sj, err = keda.KedaV1alpha1().ScaledJobs(ns).Update(ctx, sj, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	newGeneration := strconv.FormatInt(sj.Generation, 10)
	pollUntil(ctx, t, "the Jobs of the new generation only", 2*time.Minute, func(ctx context.Context) (bool, error) {
		jobs, err := jobsOf(ctx, "pending")
		if err != nil {
			return false, err
		}
		current := 0
		for _, j := range jobs {
			if j.Annotations[v1alpha1.ScaledJobGenerationAnnotation] != newGeneration {
				if j.DeletionTimestamp == nil {
					return false, nil
				}
				continue // being deleted; the garbage collector finishes
			}
			if j.Spec.Template.Spec.Containers[0].Image != "registry.invalid/worker:2" {
				return false, fmt.Errorf("job %s of generation %s has image %s", j.Name, newGeneration, j.Spec.Template.Spec.Containers[0].Image)
			}
			current++
		}
		if current > maxReplicas {
			t.Fatalf("%d Jobs of the new generation, more than maxReplicaCount %d", current, maxReplicas)
		}
		return current == maxReplicas, nil
	})
	t.Logf("Rollout: the %d running Jobs replaced by %d of generation %s in %s", maxReplicas, maxReplicas, newGeneration, time.Since(start).Round(time.Millisecond))

	// 3. Jobs that run: each pops an item and succeeds on "ok", fails on
	// anything else. History limits: 2 succeeded, 1 failed.
	script := fmt.Sprintf(`item=$(%s -h redis.%s.svc -a "$REDIS_PASSWORD" --no-auth-warning LPOP work-items); echo "item: $item"; [ "$item" = ok ]`, redisCLI, ns)
	newScaledJob("worker", "work-items", corev1.Container{Name: "worker", Image: sjShellImage + ":1", Args: []string{"-c", script}},
		func(sj *v1alpha1.ScaledJob) {
			sj.Spec.SuccessfulJobsHistoryLimit = ptr.To[int32](2)
			sj.Spec.FailedJobsHistoryLimit = ptr.To[int32](1)
		})
	pollUntil(ctx, t, "ScaledJob worker Ready", time.Minute, func(ctx context.Context) (bool, error) {
		sj, err := keda.KedaV1alpha1().ScaledJobs(ns).Get(ctx, "worker", metav1.GetOptions{})
		return err == nil && sj.Status.Conditions.Ready().IsTrue(), err
	})
	createdBefore := pollFor(ctx, t, "the operator's metrics", time.Minute, metrics)["ebb_scaledjob_jobs_created_total"]
	items := []any{"ok", "ok", "ok", "ok", "fail", "fail"}
	if err := rdb.RPush(ctx, "work-items", items...).Err(); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	var complete, failedJobs int
	pollUntil(ctx, t, "the list drained and the worker's history pruned to 2 complete and 1 failed Jobs", 3*time.Minute, func(ctx context.Context) (bool, error) {
		n, err := rdb.LLen(ctx, "work-items").Result()
		if err != nil || n != 0 {
			return false, err
		}
		jobs, err := jobsOf(ctx, "worker")
		if err != nil {
			return false, err
		}
		complete, failedJobs = 0, 0
		for _, j := range jobs {
			switch jobFinished(&j) {
			case batchv1.JobComplete:
				complete++
			case batchv1.JobFailed:
				failedJobs++
			default:
				return false, nil // still running
			}
		}
		return complete == 2 && failedJobs == 1, nil
	})
	m := pollFor(ctx, t, "the operator's metrics", time.Minute, metrics)
	created := m["ebb_scaledjob_jobs_created_total"] - createdBefore
	t.Logf("%d items: %.0f Jobs ran; history pruned to %d complete and %d failed in %s (%.0f deleted for history)",
		len(items), created, complete, failedJobs, time.Since(start).Round(time.Millisecond), m[`ebb_scaledjob_jobs_deleted_total{reason="history"}`])
	if created < float64(len(items)) {
		t.Errorf("%.0f Jobs created for %d items, want at least one per item", created, len(items))
	}

	// 4. Deleting a ScaledJob: its Jobs go with it (the garbage collector).
	start = time.Now()
	if err := keda.KedaV1alpha1().ScaledJobs(ns).Delete(ctx, "pending", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	pollUntil(ctx, t, "ScaledJob pending and its Jobs gone", 2*time.Minute, func(ctx context.Context) (bool, error) {
		_, err := keda.KedaV1alpha1().ScaledJobs(ns).Get(ctx, "pending", metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return false, err
		}
		jobs, err := jobsOf(ctx, "pending")
		return err == nil && len(jobs) == 0, err
	})
	t.Logf("ScaledJob deleted: its Jobs gone in %s", time.Since(start).Round(time.Millisecond))
	// The other ScaledJob's Jobs stay.
	if jobs, err := jobsOf(ctx, "worker"); err != nil || len(jobs) != 3 {
		t.Errorf("ScaledJob worker has %d Jobs after the other's deletion (%v), want 3", len(jobs), err)
	}
}

// jobFinished returns Complete or Failed for a finished Job, else "".
func jobFinished(j *batchv1.Job) batchv1.JobConditionType {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.Type
		}
	}
	return ""
}

// scrapeMetrics reads the operator's Prometheus metrics at addr:8080, as
// series (name with its labels, as printed) → value.
func scrapeMetrics(ctx context.Context, addr string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(addr, "8080")+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET /metrics: %s: %s", resp.Status, body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}
