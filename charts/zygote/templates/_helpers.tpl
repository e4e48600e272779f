{{/* Names, labels and the rendering of zygote's config.toml. */}}

{{- define "zygote.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "zygote.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "zygote.labels" -}}
{{ include "zygote.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "zygote.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "zygote.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "zygote.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Whether a Prometheus operator object is wanted (the pods then use the host network). */}}
{{- define "zygote.monitoring" -}}
{{- if or .Values.serviceMonitor.enabled .Values.podMonitor.enabled -}}true{{- end -}}
{{- end -}}

{{/* The daemon's [metrics] listen address (see values.yaml metrics.listen). */}}
{{- define "zygote.metricsListen" -}}
{{- if .Values.metrics.listen -}}
{{- .Values.metrics.listen -}}
{{- else if include "zygote.monitoring" . -}}
{{- printf "0.0.0.0:%d" (int .Values.metrics.port) -}}
{{- else -}}
{{- printf "127.0.0.1:%d" (int .Values.metrics.port) -}}
{{- end -}}
{{- end -}}

{{/* The RuntimeClass handler of a profile: "zygote" for the default, else "zygote-<name>". */}}
{{- define "zygote.handler" -}}
{{- if eq .name .root.Values.defaultProfile -}}zygote{{- else -}}{{ printf "zygote-%s" .name }}{{- end -}}
{{- end -}}

{{/* A TOML key: bare when it can be, else quoted. */}}
{{- define "zygote.tomlKey" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . -}}{{ . }}{{- else -}}{{ . | toJson }}{{- end -}}
{{- end -}}

{{/* A TOML value: string, bool, number, list, or (inline) table. */}}
{{- define "zygote.tomlValue" -}}
{{- $v := . -}}
{{- if kindIs "string" $v -}}{{ $v | toJson }}
{{- else if kindIs "bool" $v -}}{{ $v }}
{{- else if or (kindIs "float64" $v) (kindIs "int" $v) (kindIs "int64" $v) -}}
{{- if eq (float64 $v) (float64 (int64 $v)) -}}{{ int64 $v }}{{- else -}}{{ $v }}{{- end -}}
{{- else if kindIs "slice" $v -}}[{{- range $i, $e := $v -}}{{ if $i }}, {{ end }}{{ include "zygote.tomlValue" $e }}{{- end -}}]
{{- else if kindIs "map" $v -}}{ {{- $first := true -}}{{- range $k, $e := $v -}}{{ if not $first }}, {{ end }}{{ $first = false }}{{ include "zygote.tomlKey" $k }} = {{ include "zygote.tomlValue" $e }}{{- end -}} }
{{- else -}}{{ fail (printf "config value %v of kind %s cannot be written as TOML" $v (kindOf $v)) }}
{{- end -}}
{{- end -}}

{{/* A TOML table: scalar keys first, then sub-tables ([path.key]). Args: dict path, table. */}}
{{- define "zygote.tomlTable" -}}
{{- $path := .path -}}
{{- $table := .table -}}
[{{ $path }}]
{{- range $k, $v := $table }}
{{- if not (kindIs "map" $v) }}
{{ include "zygote.tomlKey" $k }} = {{ include "zygote.tomlValue" $v }}
{{- end }}
{{- end }}
{{- range $k, $v := $table }}
{{- if kindIs "map" $v }}

{{ include "zygote.tomlTable" (dict "path" (printf "%s.%s" $path (include "zygote.tomlKey" $k)) "table" $v) }}
{{- end }}
{{- end }}
{{- end -}}

{{/* zygote's config.toml. */}}
{{- define "zygote.configToml" -}}
# zygote config, rendered by the Helm chart {{ .Chart.Name }}-{{ .Chart.Version }} from its values.
default_profile = {{ .Values.defaultProfile | toJson }}
{{- if not (hasKey .Values.profiles .Values.defaultProfile) }}
{{- fail (printf "defaultProfile %q is not a key of profiles" .Values.defaultProfile) }}
{{- end }}
{{- range $name, $p := .Values.profiles }}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $name) }}
{{- fail (printf "profiles.%s: a profile name must be a DNS label (a-z, 0-9, '-')" $name) }}
{{- end }}

{{ include "zygote.tomlTable" (dict "path" (printf "profiles.%s" $name) "table" (default dict $p.config)) }}
{{- end }}
{{- if .Values.wasm }}

{{ include "zygote.tomlTable" (dict "path" "wasm" "table" .Values.wasm) }}
{{- end }}

[metrics]
enabled = {{ .Values.metrics.enabled }}
listen = {{ include "zygote.metricsListen" . | toJson }}
{{ end -}}
