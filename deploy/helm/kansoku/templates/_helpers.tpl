{{/* The release's name prefix for every object, at most 63 characters with a suffix. */}}
{{- define "kansoku.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kansoku.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/part-of: kansoku
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "catalog"). */}}
{{- define "kansoku.selectorLabels" -}}
app.kubernetes.io/name: kansoku
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "kansoku.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The Secret every kansoku container reads its URLs and secrets from. */}}
{{- define "kansoku.secretName" -}}
{{- .Values.existingSecret | default (printf "%s-env" (include "kansoku.fullname" .)) -}}
{{- end -}}

{{/* A secret value kept across upgrades: the Secret's current value if it exists, else
the given one, else a new random one. (dict "root" $ "secret" NAME "key" KEY "value" V) */}}
{{- define "kansoku.keptSecret" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .secret -}}
{{- if and $existing (hasKey $existing.data .key) -}}
{{- index $existing.data .key | b64dec -}}
{{- else if .value -}}
{{- .value -}}
{{- else -}}
{{- randAlphaNum 32 -}}
{{- end -}}
{{- end -}}

{{/* The environment every kansoku container shares, apart from the Secret. */}}
{{- define "kansoku.env" -}}
{{- $fullname := include "kansoku.fullname" . -}}
- name: K8S_POD_NAME
  valueFrom:
    fieldRef: {fieldPath: metadata.name}
- name: KANSOKU_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- range $name, $service := .Values.services }}
- name: {{ printf "KANSOKU_%s_URL" (upper $name) }}
  value: {{ printf "http://%s-%s:%v" $fullname $name $service.port | quote }}
{{- end }}
- name: KANSOKU_EXPLORER_URL
  value: {{ printf "http://%s-explorer:8800" $fullname | quote }}
- name: KANSOKU_GATEWAY_EXPLORER_PUBLIC_URL
  value: {{ .Values.explorer.publicUrl | default (printf "http://%s-explorer:8800" $fullname) | quote }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .Values.telemetry.otlpEndpoint | default (printf "http://%s-explorer:4318" $fullname) | quote }}
{{- with .Values.telemetry.protocol }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ . | quote }}
{{- end }}
- name: OTEL_EXPORTER_OTLP_TIMEOUT
  value: "5"
{{- range $name, $value := .Values.telemetry.extraEnv }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ printf "k8s.namespace.name=%s,k8s.pod.name=$(K8S_POD_NAME)" .Release.Namespace | quote }}
{{- end -}}
