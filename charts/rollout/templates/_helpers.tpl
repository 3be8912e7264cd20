{{/* Name of every object: the release name, suffixed unless it already says rollout. */}}
{{- define "rollout.name" -}}
{{- if contains "rollout" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-rollout" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "rollout.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: switchyard
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{ include "rollout.selectorLabels" . }}
{{- end -}}

{{/* Labels that select the controller pods; never change them on upgrade. */}}
{{- define "rollout.selectorLabels" -}}
app.kubernetes.io/name: switchyard-rollout
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "rollout.image" -}}
{{- printf "%s/%s:%s" .Values.image.registry .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Leader election is on exactly when there is more than one replica. */}}
{{- define "rollout.leaderElection" -}}
{{- if gt (int .Values.replicas) 1 }}true{{ end -}}
{{- end -}}

{{/* The webhook's Service, and its TLS Secret (cert-manager's, or the one the controller creates). */}}
{{- define "rollout.webhookName" -}}
{{- printf "%s-webhook" (include "rollout.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* cert-manager issues the webhook certificate: forced on or off, or `auto` (when its API is installed). */}}
{{- define "rollout.webhookCertManager" -}}
{{- $mode := toString .Values.webhook.certManager.enabled -}}
{{- if eq $mode "true" }}true{{ else if and (eq $mode "auto") (.Capabilities.APIVersions.Has "cert-manager.io/v1") }}true{{ end -}}
{{- end -}}
