{{/*
ebb-operator.name is the chart's name, or .Values.nameOverride: the value
of the app.kubernetes.io/name label.
*/}}
{{- define "ebb-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
ebb-operator.fullname names every object of the chart. Unlike Helm's
scaffold it leaves the release name out: the Service must be called
ebb-operator whatever the release is called, because the metrics-apiserver
finds the operator at ebb-operator.<namespace>.svc and the certificate is
issued for that name. fullnameOverride (or nameOverride) changes it.
*/}}
{{- define "ebb-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- include "ebb-operator.name" . }}
{{- end }}
{{- end }}

{{/*
ebb-operator.chart is the helm.sh/chart label: name-version.
*/}}
{{- define "ebb-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
ebb-operator.selectorLabels select the operator's pods; they never change
across upgrades (a Deployment's selector is immutable).
*/}}
{{- define "ebb-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ebb-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
ebb-operator.labels are the standard labels of every object.
*/}}
{{- define "ebb-operator.labels" -}}
helm.sh/chart: {{ include "ebb-operator.chart" . }}
{{ include "ebb-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ include "ebb-operator.imageTag" . | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: ebb
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
ebb-operator.secretLabels label the Secrets cert-manager writes. They are
not Helm's objects, so they carry no helm.sh/chart or managed-by label.
*/}}
{{- define "ebb-operator.secretLabels" -}}
{{ include "ebb-operator.selectorLabels" . }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: ebb
{{- end }}

{{/*
ebb-operator.serviceAccountName is the ServiceAccount the pods run as.
*/}}
{{- define "ebb-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ebb-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
ebb-operator.imageTag is the image tag: .Values.image.tag, else the chart's
appVersion.
*/}}
{{- define "ebb-operator.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/*
ebb-operator.image is the container image: repository@digest when a digest
is set, else repository:tag.
*/}}
{{- define "ebb-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "ebb-operator.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
ebb-operator.certSecretName is the Secret cert-manager writes the
operator's certificate into, mounted at /etc/ebb/certs.
*/}}
{{- define "ebb-operator.certSecretName" -}}
{{- printf "%s-tls" (include "ebb-operator.fullname" .) }}
{{- end }}

{{/*
ebb-operator.leaseName is the leader election Lease.
*/}}
{{- define "ebb-operator.leaseName" -}}
{{- default (include "ebb-operator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/*
ebb-operator.rootCAName names the root CA Certificate, its Secret and the
root CA Issuer the chart creates with certManager.createCA.
*/}}
{{- define "ebb-operator.rootCAName" -}}
{{- .Values.certManager.rootCA.name }}
{{- end }}

{{/*
ebb-operator.caName names the issuing CA Certificate, its Secret and the CA
Issuer the chart creates with certManager.createCA.
*/}}
{{- define "ebb-operator.caName" -}}
{{- .Values.certManager.ca.name }}
{{- end }}

{{/*
ebb-operator.issuerRef is the issuer of the operator's certificate: the CA
Issuer the chart creates with certManager.createCA, else
certManager.issuerRef.
*/}}
{{- define "ebb-operator.issuerRef" -}}
{{- if .Values.certManager.createCA -}}
name: {{ include "ebb-operator.caName" . }}
kind: Issuer
group: cert-manager.io
{{- else -}}
name: {{ required "certManager.issuerRef.name is required when certManager.createCA is false" .Values.certManager.issuerRef.name }}
kind: {{ .Values.certManager.issuerRef.kind }}
group: {{ .Values.certManager.issuerRef.group }}
{{- end }}
{{- end }}
