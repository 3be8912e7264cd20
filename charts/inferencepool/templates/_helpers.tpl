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
{{- range $owned := list "pool-name" "pool-namespace" "grpc-port" "grpc-health-port" "metrics-port" "config-file" "secure-serving" "cert-path" "ha-enable-leader-election" "drain-timeout" "trust-client-headers" "flow-control-trusted-header" "drain-grace-period" "max-buffered-bytes" "max-response-buffer-bytes" -}}
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

{{/* A duration value (`30s`, `2m`, `1h`, or a bare number of seconds) in whole seconds; any other
form fails the render, since the chart must add it up. Takes (dict "name" … "value" …). */}}
{{- define "inferencepool.seconds" -}}
{{- $text := toString .value -}}
{{- if regexMatch "^[0-9]+s?$" $text -}}
{{- trimSuffix "s" $text -}}
{{- else if regexMatch "^[0-9]+m$" $text -}}
{{- mul (int (trimSuffix "m" $text)) 60 -}}
{{- else if regexMatch "^[0-9]+h$" $text -}}
{{- mul (int (trimSuffix "h" $text)) 3600 -}}
{{- else -}}
{{- fail (printf "inferenceExtension.%s: `%s` is not a duration the chart can add up; write whole seconds, minutes or hours, e.g. 30s, 2m or 1h" .name $text) -}}
{{- end -}}
{{- end -}}

{{/* The pod's termination grace: the drain grace plus the drain timeout plus a 10 s margin
(the kubelet's SIGKILL must never cut a drain short), or the value set if it is at least that. */}}
{{- define "inferencepool.terminationGracePeriodSeconds" -}}
{{- $epp := .Values.inferenceExtension -}}
{{- $grace := include "inferencepool.seconds" (dict "name" "drainGracePeriod" "value" $epp.drainGracePeriod) -}}
{{- $timeout := include "inferencepool.seconds" (dict "name" "drainTimeout" "value" $epp.drainTimeout) -}}
{{- $needed := add $grace $timeout 10 -}}
{{- $set := toString $epp.terminationGracePeriodSeconds -}}
{{- if or (eq $set "") (eq $set "<nil>") -}}
{{- $needed -}}
{{- else if lt (int64 $epp.terminationGracePeriodSeconds) (int64 $needed) -}}
{{- fail (printf "inferenceExtension.terminationGracePeriodSeconds (%s) must be at least drainGracePeriod + drainTimeout + 10 = %d, or the kubelet kills the EPP mid-drain; raise it or leave it empty" $set (int64 $needed)) -}}
{{- else -}}
{{- int64 $epp.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}
