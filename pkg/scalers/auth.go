package scalers

import (
	"fmt"
	"net/url"
	"slices"
)

// Authentication modes of HTTP scalers (authModes), KEDA's names.
const (
	AuthModeAPIKey = "apiKey"
	AuthModeBasic  = "basic"
	AuthModeTLS    = "tls"
	AuthModeBearer = "bearer"
	AuthModeCustom = "custom"
	AuthModeOAuth  = "oauth"
)

// HTTPAuth is the authentication of the HTTP scalers (prometheus,
// metrics-api), KEDA's authModes settings. Modes comes from the metadata
// or the TriggerAuthentication (authModes, or authMode); the credentials
// come from the TriggerAuthentication, apiKey, method and keyParamName
// from either.
type HTTPAuth struct {
	Modes []string

	BearerToken Secret // bearerToken (or token)

	Username string
	Password Secret

	Cert, Key, CA Secret

	OAuthTokenURI  string
	Scopes         []string
	ClientID       string
	ClientSecret   Secret
	EndpointParams url.Values

	CustomAuthHeader string
	CustomAuthValue  Secret

	APIKey Secret
	// Method is where the API key goes: header (the default) or query.
	Method string
	// KeyParamName is the header or query parameter carrying the API key
	// (X-API-KEY or api_key when empty).
	KeyParamName string
}

// Enabled reports whether mode is one of a's modes.
func (a *HTTPAuth) Enabled(mode string) bool { return a != nil && slices.Contains(a.Modes, mode) }

func parseHTTPAuth(r *reader) *HTTPAuth {
	a := &HTTPAuth{}
	a.Modes = r.list(from("authModes", fromMetadata, fromAuth).alias("authMode").oneOf(
		AuthModeAPIKey, AuthModeBasic, AuthModeTLS, AuthModeBearer, AuthModeCustom, AuthModeOAuth))
	a.BearerToken = r.secret(auth("bearerToken").alias("token"))
	a.Username = r.str(auth("username"))
	a.Password = r.secret(auth("password"))
	a.Cert = r.secret(auth("cert"))
	a.Key = r.secret(auth("key"))
	a.CA = r.secret(auth("ca"))
	a.OAuthTokenURI = r.str(auth("oauthTokenURI"))
	a.Scopes = r.list(auth("scopes"))
	a.ClientID = r.str(auth("clientID"))
	a.ClientSecret = r.secret(auth("clientSecret"))
	if v, key, src, ok := r.get(auth("endpointParams")); ok {
		params, err := url.ParseQuery(v)
		if err != nil {
			r.fail(key, "%s is not a URL query string", keyDesc(key, src))
		}
		a.EndpointParams = params
	}
	a.CustomAuthHeader = r.str(auth("customAuthHeader"))
	a.CustomAuthValue = r.secret(auth("customAuthValue"))
	a.APIKey = r.secret(from("apiKey", fromMetadata, fromAuth))
	a.Method = r.str(from("method", fromMetadata, fromAuth).withDefault("header").oneOf("header", "query"))
	a.KeyParamName = r.str(from("keyParamName", fromMetadata, fromAuth))

	exclusive := 0
	for _, m := range a.Modes {
		if m == AuthModeBearer || m == AuthModeBasic || m == AuthModeOAuth {
			exclusive++
		}
	}
	if exclusive > 1 {
		r.fail("authModes", "authModes may contain only one of bearer, basic, oauth")
	}
	need := func(mode string, ok bool, what string) {
		if a.Enabled(mode) && !ok {
			r.fail("authModes", "authModes %s needs %s in the TriggerAuthentication", mode, what)
		}
	}
	need(AuthModeBearer, a.BearerToken != "", "bearerToken")
	need(AuthModeBasic, a.Username != "", "username")
	need(AuthModeTLS, a.Cert != "" && a.Key != "", "cert and key")
	need(AuthModeOAuth, a.OAuthTokenURI != "" && a.ClientID != "" && a.ClientSecret != "", "oauthTokenURI, clientID and clientSecret")
	need(AuthModeCustom, a.CustomAuthHeader != "" && a.CustomAuthValue != "", "customAuthHeader and customAuthValue")
	if a.Enabled(AuthModeAPIKey) && a.APIKey == "" {
		r.fail("apiKey", "authModes apiKey needs apiKey in the metadata or the TriggerAuthentication")
	}
	return a
}

// String prints a with its secrets redacted. It exists because fmt prints
// a pointer field without its Stringer fields' methods in some verbs
// (%s of a struct holding an *HTTPAuth).
func (a *HTTPAuth) String() string {
	if a == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%+v", *a)
}
