{{/*
ebb-webhook.name is the chart's name, or .Values.nameOverride: the value
of the app.kubernetes.io/name label.
*/}}
{{- define "ebb-webhook.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
ebb-webhook.fullname names every object of the chart. Unlike Helm's
scaffold it leaves the release name out: the API server calls
the webhook through the Service ebb-webhook.<namespace>.svc, for which
the certificate is issued, whatever the release is called.
fullnameOverride (or nameOverride) changes it.
*/}}
{{- define "ebb-webhook.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- include "ebb-webhook.name" . }}
{{- end }}
{{- end }}

{{/*
ebb-webhook.chart is the helm.sh/chart label: name-version.
*/}}
{{- define "ebb-webhook.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
ebb-webhook.selectorLabels select the webhook's pods; they never change
across upgrades (a Deployment's selector is immutable).
*/}}
{{- define "ebb-webhook.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ebb-webhook.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
ebb-webhook.labels are the standard labels of every object.
*/}}
{{- define "ebb-webhook.labels" -}}
helm.sh/chart: {{ include "ebb-webhook.chart" . }}
{{ include "ebb-webhook.selectorLabels" . }}
app.kubernetes.io/version: {{ include "ebb-webhook.imageTag" . | quote }}
app.kubernetes.io/component: webhook
app.kubernetes.io/part-of: ebb
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
ebb-webhook.secretLabels label the Secrets cert-manager writes. They are
not Helm's objects, so they carry no helm.sh/chart or managed-by label.
*/}}
{{- define "ebb-webhook.secretLabels" -}}
{{ include "ebb-webhook.selectorLabels" . }}
app.kubernetes.io/component: webhook
app.kubernetes.io/part-of: ebb
{{- end }}

{{/*
ebb-webhook.serviceAccountName is the ServiceAccount the pods run as.
*/}}
{{- define "ebb-webhook.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ebb-webhook.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
ebb-webhook.imageTag is the image tag: .Values.image.tag, else the chart's
appVersion.
*/}}
{{- define "ebb-webhook.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/*
ebb-webhook.image is the container image: repository@digest when a digest
is set, else repository:tag.
*/}}
{{- define "ebb-webhook.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "ebb-webhook.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
ebb-webhook.certSecretName is the Secret cert-manager writes the
webhook's certificate into, mounted at /etc/ebb/certs.
*/}}
{{- define "ebb-webhook.certSecretName" -}}
{{- printf "%s-tls" (include "ebb-webhook.fullname" .) }}
{{- end }}

{{/*
ebb-webhook.issuerRef is the issuer of the certificate: ebb's CA Issuer
(created by the ebb-operator chart) unless certManager.issuerRef says
otherwise.
*/}}
{{- define "ebb-webhook.issuerRef" -}}
name: {{ .Values.certManager.issuerRef.name }}
kind: {{ .Values.certManager.issuerRef.kind }}
group: {{ .Values.certManager.issuerRef.group }}
{{- end }}
