{{/*
ebb-metrics-apiserver.name is the chart's name, or .Values.nameOverride: the value
of the app.kubernetes.io/name label.
*/}}
{{- define "ebb-metrics-apiserver.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
ebb-metrics-apiserver.fullname names every object of the chart. Unlike Helm's
scaffold it leaves the release name out: the APIService points
at the Service ebb-metrics-apiserver.<namespace>.svc, for which the certificate is
issued, whatever the release is called.
fullnameOverride (or nameOverride) changes it.
*/}}
{{- define "ebb-metrics-apiserver.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- include "ebb-metrics-apiserver.name" . }}
{{- end }}
{{- end }}

{{/*
ebb-metrics-apiserver.chart is the helm.sh/chart label: name-version.
*/}}
{{- define "ebb-metrics-apiserver.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
ebb-metrics-apiserver.selectorLabels select the metrics-apiserver's pods; they never change
across upgrades (a Deployment's selector is immutable).
*/}}
{{- define "ebb-metrics-apiserver.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ebb-metrics-apiserver.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
ebb-metrics-apiserver.labels are the standard labels of every object.
*/}}
{{- define "ebb-metrics-apiserver.labels" -}}
helm.sh/chart: {{ include "ebb-metrics-apiserver.chart" . }}
{{ include "ebb-metrics-apiserver.selectorLabels" . }}
app.kubernetes.io/version: {{ include "ebb-metrics-apiserver.imageTag" . | quote }}
app.kubernetes.io/component: metrics-apiserver
app.kubernetes.io/part-of: ebb
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
ebb-metrics-apiserver.secretLabels label the Secrets cert-manager writes. They are
not Helm's objects, so they carry no helm.sh/chart or managed-by label.
*/}}
{{- define "ebb-metrics-apiserver.secretLabels" -}}
{{ include "ebb-metrics-apiserver.selectorLabels" . }}
app.kubernetes.io/component: metrics-apiserver
app.kubernetes.io/part-of: ebb
{{- end }}

{{/*
ebb-metrics-apiserver.serviceAccountName is the ServiceAccount the pods run as.
*/}}
{{- define "ebb-metrics-apiserver.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ebb-metrics-apiserver.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
ebb-metrics-apiserver.imageTag is the image tag: .Values.image.tag, else the chart's
appVersion.
*/}}
{{- define "ebb-metrics-apiserver.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/*
ebb-metrics-apiserver.image is the container image: repository@digest when a digest
is set, else repository:tag.
*/}}
{{- define "ebb-metrics-apiserver.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "ebb-metrics-apiserver.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
ebb-metrics-apiserver.certSecretName is the Secret cert-manager writes the
metrics-apiserver's certificate into, mounted at /etc/ebb/certs.
*/}}
{{- define "ebb-metrics-apiserver.certSecretName" -}}
{{- printf "%s-tls" (include "ebb-metrics-apiserver.fullname" .) }}
{{- end }}

{{/*
ebb-metrics-apiserver.issuerRef is the issuer of the certificate: ebb's CA Issuer
(created by the ebb-operator chart) unless certManager.issuerRef says
otherwise.
*/}}
{{- define "ebb-metrics-apiserver.issuerRef" -}}
name: {{ .Values.certManager.issuerRef.name }}
kind: {{ .Values.certManager.issuerRef.kind }}
group: {{ .Values.certManager.issuerRef.group }}
{{- end }}

{{/*
ebb-metrics-apiserver.operatorAddress is --operator-address: operator.address,
else the operator's headless Service ebb-operator.<namespace>.svc:9443 in
operator.namespace (default: the release namespace).
*/}}
{{- define "ebb-metrics-apiserver.operatorAddress" -}}
{{- if .Values.operator.address }}
{{- .Values.operator.address }}
{{- else }}
{{- printf "ebb-operator.%s.svc:9443" (default .Release.Namespace .Values.operator.namespace) }}
{{- end }}
{{- end }}
