{{/* The InferencePool's name: the release name. */}}
{{- define "inferencepool.poolName" -}}
{{- .Release.Name | trunc 59 | trimSuffix "-" -}}
{{- end -}}

{{/* The EPP's Deployment, Service, ServiceAccount and RBAC name. */}}
{{- define "inferencepool.eppName" -}}
{{- printf "%s-epp" (include "inferencepool.poolName" .) -}}
{{- end -}}

{{/* Labels on every object of the chart. */}}
{{- define "inferencepool.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: switchyard
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{ include "inferencepool.selectorLabels" . }}
{{- end -}}

{{/* Labels that select the EPP pods; never change them on upgrade. */}}
{{- define "inferencepool.selectorLabels" -}}
app.kubernetes.io/name: switchyard-epp
app.kubernetes.io/instance: {{ .Release.Name }}
inferencepool: {{ include "inferencepool.poolName" . }}
{{- end -}}

{{/* The EPP image reference. */}}
{{- define "inferencepool.image" -}}
{{- $image := .Values.inferenceExtension.image -}}
{{- printf "%s/%s:%s" $image.registry $image.repository (default .Chart.AppVersion $image.tag) -}}
{{- end -}}

{{/* Leader election is on exactly when there is more than one replica (active-passive). */}}
{{- define "inferencepool.leaderElection" -}}
{{- if gt (int .Values.inferenceExtension.replicas) 1 }}true{{ end -}}
{{- end -}}

{{/* Fails the render with a message that says what to set. */}}
{{- define "inferencepool.validate" -}}
{{- if empty .Values.inferencePool.modelServers.matchLabels -}}
{{- fail "inferencePool.modelServers.matchLabels is required: set the labels of your model-server pods, e.g. --set inferencePool.modelServers.matchLabels.app=vllm-llama3" -}}
{{- end -}}
{{- $flags := .Values.inferenceExtension.flags | default dict -}}
{{- range $owned := list "pool-name" "pool-namespace" "grpc-port" "grpc-health-port" "metrics-port" "config-file" "secure-serving" "cert-path" "ha-enable-leader-election" "drain-timeout" "max-buffered-bytes" "max-response-buffer-bytes" -}}
{{- if hasKey $flags $owned -}}
{{- fail (printf "inferenceExtension.flags.%s is set by the chart from other values; remove it (see the chart README)" $owned) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A flag value as text; whole numbers stay whole (YAML numbers reach templates as floats). */}}
{{- define "inferencepool.flagValue" -}}
{{- /* Helm 3.6 is built with Go 1.16, whose `and` does not short-circuit: nest the ifs. */ -}}
{{- if kindIs "float64" . -}}
{{- if eq (float64 (int64 .)) . -}}
{{- int64 . -}}
{{- else -}}
{{- . -}}
{{- end -}}
{{- else -}}
{{- . -}}
{{- end -}}
{{- end -}}
