package scaler

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2/sas"
)

// Azurite's well-known development account (public, documented by
// Microsoft; not a secret).
const (
	azuriteAccount = "devstoreaccount1"
	azuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// azuriteServer is one Azurite service (queue or blob) owned by a test.
type azuriteServer struct {
	t        *testing.T
	endpoint string // http://127.0.0.1:<port>/devstoreaccount1
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the process has exited
	logs     *lockedBuffer
	once     sync.Once
}

// azuriteBinDir asks hack/install-azurite.sh where it installs Azurite
// (installing nothing) and fails the test when Azurite is not there.
func azuriteBinDir(t *testing.T) string {
	t.Helper()
	script, err := filepath.Abs("../../../../hack/install-azurite.sh")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("bash", script, "--bin-dir").Output()
	if err != nil {
		t.Fatalf("hack/install-azurite.sh --bin-dir: %v", err)
	}
	dir := strings.TrimSpace(string(out))
	for _, name := range []string{"azurite-queue", "azurite-blob"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatalf("Azurite is not installed (%v): run hack/install-azurite.sh (hack/test.sh does)", err)
		}
	}
	return dir
}

// startAzurite starts azurite-queue or azurite-blob (service "queue" or
// "blob") on a free loopback port, in memory, without telemetry.
func startAzurite(t *testing.T, service string) *azuriteServer {
	t.Helper()
	bin := filepath.Join(azuriteBinDir(t), "azurite-"+service)
	addr := closedAddress(t)
	_, port, _ := net.SplitHostPort(addr)
	az := &azuriteServer{t: t, endpoint: "http://" + addr + "/" + azuriteAccount, logs: &lockedBuffer{}, exited: make(chan struct{})}
	az.cmd = exec.Command(bin,
		"--"+service+"Host", "127.0.0.1",
		"--"+service+"Port", port,
		"--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry", "--silent", "--loose",
	)
	az.cmd.Dir = t.TempDir()
	az.cmd.Stdout = az.logs
	az.cmd.Stderr = az.logs
	// Its own process group, so stopping it stops node and its children.
	az.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := az.cmd.Start(); err != nil {
		t.Fatalf("start azurite-%s: %v", service, err)
	}
	go func() { _ = az.cmd.Wait(); close(az.exited) }()
	t.Cleanup(az.stop)
	// Node takes a few seconds to load Azurite on a busy machine.
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return az
		}
		if time.Now().After(deadline) {
			t.Fatalf("azurite-%s on %s not ready: %v\n%s", service, addr, err, az.logs)
		}
		select {
		case <-az.exited:
			t.Fatalf("azurite-%s exited: %v\n%s", service, az.cmd.ProcessState, az.logs)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (az *azuriteServer) stop() {
	az.once.Do(func() {
		_ = syscall.Kill(-az.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-az.exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-az.cmd.Process.Pid, syscall.SIGKILL)
			<-az.exited
		}
	})
}

// connection is the account's connection string with the service's
// endpoint (QueueEndpoint or BlobEndpoint).
func (az *azuriteServer) connection(endpointKey string) string {
	return fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;%s=%s;", azuriteAccount, azuriteKey, endpointKey, az.endpoint)
}

// checkNoAzureSecret fails when err shows the account key or signature.
func checkNoAzureSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, s := range append(secrets, azuriteKey, azuriteKey[:20]) {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("error %q reveals a secret", err)
		}
	}
}

func TestAzureQueue(t *testing.T) {
	ctx := t.Context()
	az := startAzurite(t, "queue")
	conn := az.connection("QueueEndpoint")
	admin, err := azqueue.NewQueueClientFromConnectionString(conn, "orders", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Create(ctx, nil); err != nil {
		t.Fatalf("create queue: %v", err)
	}
	enqueue := func(n int) {
		t.Helper()
		for i := range n {
			if _, err := admin.EnqueueMessage(ctx, "job-"+strconv.Itoa(i), nil); err != nil {
				t.Fatalf("enqueue: %v", err)
			}
		}
	}
	meta := func(kv ...string) map[string]string {
		m := map[string]string{"queueName": "orders", "queueLength": "5", "activationQueueLength": "2"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	auth := map[string]string{"connection": conn}
	all := build(t, "azure-queue", meta(), auth, Deps{})
	visible := build(t, "azure-queue", meta("queueLengthStrategy", "visibleonly"), auth, Deps{})

	pollWant(t, all, 0, false)
	pollWant(t, visible, 0, false)
	enqueue(2)
	pollWant(t, all, 2, false) // at the activation value: not active
	enqueue(5)
	pollWant(t, all, 7, true)
	pollWant(t, visible, 7, true)

	// Messages being processed (dequeued, invisible for a minute) count
	// for all, not for visibleonly.
	three, hidden := int32(3), int32(60)
	if _, err := admin.DequeueMessages(ctx, &azqueue.DequeueMessagesOptions{NumberOfMessages: &three, VisibilityTimeout: &hidden}); err != nil {
		t.Fatalf("dequeue: %v", err)
	}
	pollWant(t, all, 7, true)
	pollWant(t, visible, 4, true)

	// 32 visible messages or more: visibleonly falls back to the
	// approximate count, as KEDA's does.
	enqueue(40)
	pollWant(t, visible, 47, true)
	pollWant(t, all, 47, true)

	// The connection string from the environment, through New.
	fromEnv := build(t, "azure-queue", meta("connectionFromEnv", "STORAGE", "connection", conn), nil, Deps{})
	pollWant(t, fromEnv, 47, true)

	// A shared access signature instead of the account key.
	cred, err := azqueue.NewSharedKeyCredential(azuriteAccount, azuriteKey)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(queue string) string {
		qp, err := sas.QueueSignatureValues{
			Protocol: sas.ProtocolHTTPSandHTTP, ExpiryTime: time.Now().Add(time.Hour).UTC(),
			Permissions: (&sas.QueuePermissions{Read: true}).String(), QueueName: queue,
		}.SignWithSharedKey(cred)
		if err != nil {
			t.Fatal(err)
		}
		return qp.Encode()
	}
	signature := sign("orders")
	sasConn := "QueueEndpoint=" + az.endpoint + ";SharedAccessSignature=" + signature
	pollWant(t, build(t, "azure-queue", meta(), map[string]string{"connection": sasConn}, Deps{}), 47, true)
	// A signature for another queue: refused, and not shown.
	_, err = build(t, "azure-queue", meta("queueName", "other"), map[string]string{"connection": sasConn}, Deps{}).Poll(ctx)
	checkKind(t, err, ErrBadResponse)
	checkNoAzureSecret(t, err, signature, strings.SplitN(strings.SplitN(signature, "sig=", 2)[1], "&", 2)[0])

	// Drained.
	if _, err := admin.ClearMessages(ctx, nil); err != nil {
		t.Fatalf("clear: %v", err)
	}
	pollWant(t, all, 0, false)
	pollWant(t, visible, 0, false)

	// No such queue: the service's error code, the queue's address.
	_, err = build(t, "azure-queue", meta("queueName", "nosuch"), auth, Deps{}).Poll(ctx)
	checkKind(t, err, ErrBadResponse)
	for _, want := range []string{"azure-queue trigger (" + az.endpoint + "/nosuch)", "HTTP status 404", "QueueNotFound"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	checkNoAzureSecret(t, err)

	// A wrong key: refused, and no key shown.
	const wrongKey = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk="
	wrong := strings.Replace(conn, azuriteKey, wrongKey, 1)
	_, err = build(t, "azure-queue", meta(), map[string]string{"connection": wrong}, Deps{}).Poll(ctx)
	checkKind(t, err, ErrBadResponse)
	checkNoAzureSecret(t, err, wrongKey)
	if !strings.Contains(err.Error(), "HTTP status 403") {
		t.Errorf("error %q: want HTTP status 403", err)
	}

	// A key that is not base64: refused by New, without showing it.
	const notBase64 = "not*base64*key"
	_, err = tryBuild("azure-queue", meta(), map[string]string{"connection": strings.Replace(conn, azuriteKey, notBase64, 1)}, Deps{})
	checkKind(t, err, ErrInvalidConfig)
	checkNoAzureSecret(t, err, notBase64)

	// A cancelled poll.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = all.Poll(cctx)
	checkKind(t, err, ErrUnreachable)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}

	// Close: polls fail with ErrClosed, Close is idempotent.
	if err := visible.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = visible.Poll(ctx)
	checkKind(t, err, ErrClosed)
	if err := visible.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	// Azurite stopped: unreachable.
	az.stop()
	_, err = all.Poll(ctx)
	checkKind(t, err, ErrUnreachable)
	checkNoAzureSecret(t, err)
	if !strings.Contains(err.Error(), "azure-queue trigger ("+az.endpoint+"/orders)") {
		t.Errorf("error %q does not name the trigger type and queue", err)
	}
}

func TestAzureBlob(t *testing.T) {
	ctx := t.Context()
	az := startAzurite(t, "blob")
	conn := az.connection("BlobEndpoint")
	admin, err := azblob.NewClientFromConnectionString(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateContainer(ctx, "uploads", nil); err != nil {
		t.Fatalf("create container: %v", err)
	}
	upload := func(names ...string) {
		t.Helper()
		for _, name := range names {
			if _, err := admin.UploadBuffer(ctx, "uploads", name, []byte(name), nil); err != nil {
				t.Fatalf("upload %s: %v", name, err)
			}
		}
	}
	remove := func(names ...string) {
		t.Helper()
		for _, name := range names {
			if _, err := admin.DeleteBlob(ctx, "uploads", name, nil); err != nil {
				t.Fatalf("delete %s: %v", name, err)
			}
		}
	}
	auth := map[string]string{"connection": conn}
	blobs := func(kv ...string) Scaler {
		m := map[string]string{"blobContainerName": "uploads", "blobCount": "5", "activationBlobCount": "2"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return build(t, "azure-blob", m, auth, Deps{})
	}
	top := blobs()
	pollWant(t, top, 0, false)

	all := []string{"a.csv", "b.json", "logs/1.txt", "logs/2.txt", "logs/deep/3.txt", "logs2/x.csv", "logs|p.txt"}
	upload(all...)
	// One level under the root: a.csv, b.json and logs|p.txt, not the
	// blobs under logs/, logs/deep/ and logs2/.
	pollWant(t, top, 3, true)
	for name, tc := range map[string]struct {
		meta []string
		want int64
	}{
		"prefix (a directory)":            {meta: []string{"blobPrefix", "logs"}, want: 2},
		"prefix, other delimiter":         {meta: []string{"blobPrefix", "logs", "blobDelimiter", "|"}, want: 1},
		"prefix, recursive":               {meta: []string{"blobPrefix", "logs", "recursive", "true"}, want: 5},
		"recursive":                       {meta: []string{"recursive", "true"}, want: 7},
		"glob":                            {meta: []string{"globPattern", "**.csv"}, want: 2},
		"glob, prefix":                    {meta: []string{"globPattern", "logs/*/*.txt", "blobPrefix", "logs"}, want: 1},
		"glob alternatives":               {meta: []string{"globPattern", "{a,b}.*"}, want: 2},
		"no blob under the prefix":        {meta: []string{"blobPrefix", "none"}, want: 0},
		"glob matching nothing":           {meta: []string{"globPattern", "*.parquet"}, want: 0},
		"connection from the environment": {meta: []string{"connectionFromEnv", "STORAGE", "connection", conn}, want: 3},
	} {
		t.Run(name, func(t *testing.T) {
			m := map[string]string{"blobContainerName": "uploads", "activationBlobCount": "2"}
			for i := 0; i+1 < len(tc.meta); i += 2 {
				m[tc.meta[i]] = tc.meta[i+1]
			}
			a := auth
			if m["connectionFromEnv"] != "" {
				a = nil
			}
			pollWant(t, build(t, "azure-blob", m, a, Deps{}), tc.want, tc.want > 2)
		})
	}

	// Drained.
	remove(all...)
	pollWant(t, top, 0, false)

	// No such container: the service's error code, the container's address.
	_, err = build(t, "azure-blob", map[string]string{"blobContainerName": "nosuch"}, auth, Deps{}).Poll(ctx)
	checkKind(t, err, ErrBadResponse)
	for _, want := range []string{"azure-blob trigger (" + az.endpoint + "/nosuch)", "HTTP status 404", "ContainerNotFound"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	checkNoAzureSecret(t, err)

	// A wrong key: refused, and no key shown.
	const wrongKey = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk="
	_, err = build(t, "azure-blob", map[string]string{"blobContainerName": "uploads"},
		map[string]string{"connection": strings.Replace(conn, azuriteKey, wrongKey, 1)}, Deps{}).Poll(ctx)
	checkKind(t, err, ErrBadResponse)
	checkNoAzureSecret(t, err, wrongKey)

	// Close: polls fail with ErrClosed, Close is idempotent.
	closed := blobs()
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = closed.Poll(ctx)
	checkKind(t, err, ErrClosed)
	if err := closed.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	// Azurite stopped: unreachable.
	az.stop()
	_, err = top.Poll(ctx)
	checkKind(t, err, ErrUnreachable)
	checkNoAzureSecret(t, err)
	if !strings.Contains(err.Error(), "azure-blob trigger ("+az.endpoint+"/uploads)") {
		t.Errorf("error %q does not name the trigger type and container", err)
	}
}

// TestAzureStorageTransportErrors needs no Azurite: a closed port and a
// server that never answers, with a shared access signature that must
// not show in the errors (the SDK's transport errors carry the URL).
func TestAzureStorageTransportErrors(t *testing.T) {
	const sig = "c2lnbmF0dXJlLXNlY3JldA%3D%3D"
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = hang.Close() }()
	go func() {
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			defer func() { _ = c.Close() }() // held open, never answered
		}
	}()
	client := &http.Client{Timeout: 300 * time.Millisecond}
	for name, tc := range map[string]struct {
		addr string
		want error
	}{
		"closed port":    {addr: closedAddress(t), want: ErrUnreachable},
		"never answered": {addr: hang.Addr().String(), want: ErrTimeout},
	} {
		for _, typ := range []string{"azure-queue", "azure-blob"} {
			t.Run(name+"/"+typ, func(t *testing.T) {
				endpoint := map[string]string{"azure-queue": "QueueEndpoint", "azure-blob": "BlobEndpoint"}[typ]
				conn := endpoint + "=http://" + tc.addr + "/" + azuriteAccount + ";SharedAccessSignature=sv=2020-02-10&sp=rl&sig=" + sig
				s := build(t, typ, map[string]string{"queueName": "q", "blobContainerName": "c"}, map[string]string{"connection": conn}, Deps{HTTPClient: client})
				_, err := s.Poll(t.Context())
				checkKind(t, err, tc.want)
				checkNoAzureSecret(t, err, sig, "c2lnbmF0dXJl")
			})
		}
	}
}
