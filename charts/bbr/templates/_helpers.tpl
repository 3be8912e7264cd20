{{/* Name of the Deployment, Service, ServiceAccount and RBAC objects. */}}
{{- define "bbr.name" -}}
{{- .Values.bbr.name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object of the chart. */}}
{{- define "bbr.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: switchyard
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{ include "bbr.selectorLabels" . }}
{{- end -}}

{{/* Labels that select the BBR pods; never change them on upgrade. */}}
{{- define "bbr.selectorLabels" -}}
app.kubernetes.io/name: switchyard-bbr
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "bbr.image" -}}
{{- $image := .Values.bbr.image -}}
{{- printf "%s/%s:%s" $image.registry $image.repository (default .Chart.AppVersion $image.tag) -}}
{{- end -}}

{{/* The gateway pods' labels for the NetworkPolicy. */}}
{{- define "bbr.gatewayPodLabels" -}}
{{- if .Values.networkPolicy.gateway.podLabels -}}
{{- toYaml .Values.networkPolicy.gateway.podLabels -}}
{{- else -}}
gateway.networking.k8s.io/gateway-name: {{ .Values.inferenceGateway.name }}
{{- end -}}
{{- end -}}

{{/* Fails the render with a message that says what to change. */}}
{{- define "bbr.validate" -}}
{{- $flags := .Values.bbr.flags | default dict -}}
{{- range $owned := list "grpc-port" "grpc-health-port" "metrics-port" "secure-serving" "cert-path" "watch-configmaps" "configmap-namespace" "watch-all-namespaces" "drain-timeout-seconds" "drain-grace-period-seconds" -}}
{{- if hasKey $flags $owned -}}
{{- fail (printf "bbr.flags.%s is set by the chart from other values; remove it (see the chart README)" $owned) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.bbr.baseModels (not .Values.bbr.watchConfigMaps) -}}
{{- fail "bbr.baseModels are published as ConfigMaps, which BBR reads only with bbr.watchConfigMaps=true" -}}
{{- end -}}
{{- end -}}

{{/* A flag value as text; whole numbers stay whole (YAML numbers reach templates as floats). */}}
{{- define "bbr.flagValue" -}}
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

{{/* The pod's termination grace: the drain grace plus the drain timeout plus a 10 s margin
(the kubelet's SIGKILL must never cut a drain short), or the value set if it is at least that. */}}
{{- define "bbr.terminationGracePeriodSeconds" -}}
{{- $bbr := .Values.bbr -}}
{{- $needed := add (int64 $bbr.drainGracePeriodSeconds) (int64 $bbr.drainTimeoutSeconds) 10 -}}
{{- $set := toString $bbr.terminationGracePeriodSeconds -}}
{{- if or (eq $set "") (eq $set "<nil>") -}}
{{- $needed -}}
{{- else if lt (int64 $bbr.terminationGracePeriodSeconds) (int64 $needed) -}}
{{- fail (printf "bbr.terminationGracePeriodSeconds (%s) must be at least drainGracePeriodSeconds + drainTimeoutSeconds + 10 = %d, or the kubelet kills BBR mid-drain; raise it or leave it empty" $set (int64 $needed)) -}}
{{- else -}}
{{- int64 $bbr.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}
