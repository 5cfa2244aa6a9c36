package scaler

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// echo answers 500 with everything the client sent, as a careless server
// might: the errors must still not show a secret.
func echo(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = fmt.Fprintf(w, "url=%s headers=%v", r.URL.String(), r.Header)
}

func TestNoSecretInErrors(t *testing.T) {
	const (
		apiKey   = "APIKEY-very-secret"
		password = "PASSWORD-very-secret"
		token    = "TOKEN-very-secret"
		custom   = "CUSTOM-very-secret"
		tlsKey   = "-----BEGIN PRIVATE KEY-----\nKEY-very-secret\n-----END PRIVATE KEY-----"
	)
	secrets := []string{apiKey, password, token, custom, "KEY-very-secret", "very-secret"}
	srv := httptest.NewServer(http.HandlerFunc(echo))
	t.Cleanup(srv.Close)
	dead := "http://" + closedAddress(t)

	tests := map[string]struct {
		typ  string
		meta map[string]string
		auth map[string]string
	}{
		"metrics-api apiKey in query, echoed": {
			typ:  "metrics-api",
			meta: map[string]string{"url": srv.URL + "/m", "valueLocation": "v", "targetValue": "1", "authMode": "apiKey", "method": "query"},
			auth: map[string]string{"apiKey": apiKey},
		},
		"metrics-api apiKey in query, unreachable": {
			typ:  "metrics-api",
			meta: map[string]string{"url": dead + "/m", "valueLocation": "v", "targetValue": "1", "authMode": "apiKey", "method": "query"},
			auth: map[string]string{"apiKey": apiKey},
		},
		"metrics-api password in the URL, unreachable": {
			typ:  "metrics-api",
			meta: map[string]string{"url": "http://user:" + password + "@" + strings.TrimPrefix(dead, "http://") + "/m", "valueLocation": "v", "targetValue": "1"},
		},
		"metrics-api basic, echoed": {
			typ:  "metrics-api",
			meta: map[string]string{"url": srv.URL, "valueLocation": "v", "targetValue": "1", "authMode": "basic"},
			auth: map[string]string{"username": "u", "password": password},
		},
		"metrics-api bad client key": {
			typ:  "metrics-api",
			meta: map[string]string{"url": srv.URL, "valueLocation": "v", "targetValue": "1", "authMode": "tls"},
			auth: map[string]string{"cert": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----", "key": tlsKey},
		},
		"prometheus bearer, echoed": {
			typ:  "prometheus",
			meta: map[string]string{"serverAddress": srv.URL, "query": "up", "threshold": "1", "authModes": "bearer"},
			auth: map[string]string{"bearerToken": token},
		},
		"prometheus custom header, echoed": {
			typ:  "prometheus",
			meta: map[string]string{"serverAddress": srv.URL, "query": "up", "threshold": "1", "authModes": "custom"},
			auth: map[string]string{"customAuthHeader": "X-Auth", "customAuthValue": custom},
		},
		"prometheus bearer, unreachable": {
			typ:  "prometheus",
			meta: map[string]string{"serverAddress": dead, "query": "up", "threshold": "1", "authModes": "bearer"},
			auth: map[string]string{"bearerToken": token},
		},
		"redis password, unreachable": {
			typ:  "redis",
			meta: map[string]string{"address": strings.TrimPrefix(dead, "http://"), "listName": "jobs"},
			auth: map[string]string{"password": password},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := tryBuild(tc.typ, tc.meta, tc.auth, Deps{})
			if err == nil {
				t.Cleanup(func() { _ = s.Close() })
				_, err = s.Poll(t.Context())
			}
			if err == nil {
				t.Fatal("expected an error")
			}
			for _, secret := range secrets {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error contains a secret: %v", err)
				}
			}
			if !strings.Contains(err.Error(), tc.typ+" trigger") {
				t.Errorf("error %q does not name the trigger type", err)
			}
		})
	}
}
