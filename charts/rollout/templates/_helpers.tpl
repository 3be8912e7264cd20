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
