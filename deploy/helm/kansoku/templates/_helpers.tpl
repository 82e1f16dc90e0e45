{{/* The release's name prefix for every object, at most 63 characters with a suffix. */}}
{{- define "kansoku.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Every object's labels: the chart's, then the component's selector labels (each
label once). (dict "root" $ "component" "catalog") */}}
{{- define "kansoku.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
app.kubernetes.io/part-of: kansoku
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
{{ include "kansoku.selectorLabels" . }}
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

{{/* What each kansoku component talks to, as the code says (docs/architecture.md, "Who
talks to whom"; tests/deploy/test_chart.py derives the same from the services' settings
and connections): the services it calls, and the servers it uses. The NetworkPolicies
allow exactly this, and each pod gets only the addresses and secrets it needs. */}}
{{- define "kansoku.flows" -}}
explorer: {calls: [identity]}
identity: {calls: [], postgresql: true}
catalog: {calls: [identity], postgresql: true, nats: true, valkey: true}
inventory: {calls: [identity], postgresql: true, nats: true}
cart: {calls: [identity], valkey: true}
orders: {calls: [cart, catalog, identity, inventory, payments], postgresql: true, nats: true}
payments: {calls: [identity], postgresql: true, nats: true}
worker: {calls: [catalog, identity, inventory], postgresql: true, nats: true}
lab: {calls: [identity], postgresql: true}
gateway: {calls: [cart, catalog, explorer, identity, inventory, lab, orders, worker], valkey: true}
synthetics: {calls: [gateway, identity]}
{{- end -}}

{{/* Where a kansoku component listens: (dict "root" $ "component" "catalog"). */}}
{{- define "kansoku.port" -}}
{{- if eq .component "explorer" -}}8800{{- else -}}{{ (index .root.Values.services .component).port }}{{- end -}}
{{- end -}}

{{/* The Secret the generated (or your) secrets are in. */}}
{{- define "kansoku.secretName" -}}
{{- .Values.existingSecret | default (printf "%s-generated" (include "kansoku.fullname" .)) -}}
{{- end -}}

{{/* The Secret the external servers' URLs and the OTLP headers are in. */}}
{{- define "kansoku.urlSecretName" -}}
{{- .Values.existingSecret | default (printf "%s-env" (include "kansoku.fullname" .)) -}}
{{- end -}}

{{/* Where services send telemetry: the Collector, else the backend, else the explorer. A
render that would send it nowhere fails. */}}
{{- define "kansoku.otlpEndpoint" -}}
{{- $fullname := include "kansoku.fullname" . -}}
{{- if not (or .Values.explorer.enabled .Values.telemetry.otlpEndpoint) -}}
{{- fail "telemetry would go nowhere: keep explorer.enabled, or set telemetry.otlpEndpoint to your OTLP backend (with collector.enabled to go through a Collector)" -}}
{{- end -}}
{{- if .Values.collector.enabled -}}
{{- printf "http://%s-collector:4318" $fullname -}}
{{- else -}}
{{- .Values.telemetry.otlpEndpoint | default (printf "http://%s-explorer:4318" $fullname) -}}
{{- end -}}
{{- end -}}

{{/* The instrumentation approach of each service (docs/approaches.md), as YAML
name: approach: its own services.<name>.instrumentation, else telemetry.instrumentation. */}}
{{- define "kansoku.approaches" -}}
{{- range $name, $service := .Values.services }}
{{ $name }}: {{ $service.instrumentation | default $.Values.telemetry.instrumentation }}
{{- end }}
{{- end -}}

{{/* "true" when any service reports to the explorer's vendor intakes (xray, newrelic),
which the explorer then opens; a render that would have them report nowhere fails. */}}
{{- define "kansoku.vendorIntakes" -}}
{{- $approaches := include "kansoku.approaches" . | fromYaml -}}
{{- $vendors := without (values $approaches | uniq) "otel" "none" -}}
{{- if $vendors -}}
{{- if not .Values.explorer.enabled -}}
{{- fail (printf "instrumentation %s reports to the explorer's intakes: keep explorer.enabled" (join ", " ($vendors | sortAlpha))) -}}
{{- end -}}
true
{{- end -}}
{{- end -}}

{{/* One secret as an environment variable: (dict "name" VAR "secret" NAME "key" KEY). */}}
{{- define "kansoku.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef: {name: {{ .secret }}, key: {{ .key }}{{ if .optional }}, optional: true{{ end }}}
{{- end -}}

{{/* The environment of one kansoku component: (dict "root" $ "component" "catalog"). */}}
{{- define "kansoku.env" -}}
{{- $root := .root -}}
{{- $fullname := include "kansoku.fullname" $root -}}
{{- $flow := index (include "kansoku.flows" $root | fromYaml) .component -}}
{{- $secret := include "kansoku.secretName" $root -}}
{{- $urls := include "kansoku.urlSecretName" $root -}}
- name: KANSOKU_SERVICE
  value: {{ .component | quote }}
- name: K8S_POD_NAME
  valueFrom:
    fieldRef: {fieldPath: metadata.name}
- name: KANSOKU_LOG_LEVEL
  value: {{ $root.Values.logLevel | quote }}
{{ include "kansoku.secretEnv" (dict "name" "KANSOKU_SERVICE_SECRET" "secret" $secret "key" "KANSOKU_SERVICE_SECRET") }}
{{- range $called := $flow.calls }}
- name: {{ printf "KANSOKU_%s_URL" (upper $called) }}
  value: {{ printf "http://%s-%s:%s" $fullname $called (include "kansoku.port" (dict "root" $root "component" $called)) | quote }}
{{- end }}
{{- if $flow.postgresql }}
{{- if $root.Values.postgresql.bundled }}
{{ include "kansoku.secretEnv" (dict "name" "POSTGRES_PASSWORD" "secret" $secret "key" "POSTGRES_PASSWORD") }}
- name: KANSOKU_DATABASE_URL
  value: {{ printf "postgresql://kansoku:$(POSTGRES_PASSWORD)@%s-postgresql:5432/kansoku" $fullname | quote }}
{{- else }}
{{ include "kansoku.secretEnv" (dict "name" "KANSOKU_DATABASE_URL" "secret" $urls "key" "KANSOKU_DATABASE_URL") }}
{{- end }}
{{- end }}
{{- if $flow.nats }}
{{- if $root.Values.nats.bundled }}
- name: KANSOKU_NATS_URL
  value: {{ printf "nats://%s-nats:4222" $fullname | quote }}
{{- else }}
{{ include "kansoku.secretEnv" (dict "name" "KANSOKU_NATS_URL" "secret" $urls "key" "KANSOKU_NATS_URL") }}
{{- end }}
{{- end }}
{{- if $flow.valkey }}
{{- if $root.Values.valkey.bundled }}
- name: KANSOKU_REDIS_URL
  value: {{ printf "redis://%s-valkey:6379/0" $fullname | quote }}
{{- else }}
{{ include "kansoku.secretEnv" (dict "name" "KANSOKU_REDIS_URL" "secret" $urls "key" "KANSOKU_REDIS_URL") }}
{{- end }}
{{- end }}
{{- if $root.Values.flags.enabled }}
# The fault flags: the ConfigMap, mounted (every pod reads it, as the flags file).
- name: KANSOKU_FLAGS_FILE
  value: /etc/kansoku/flags/flags.json
{{- if eq .component "gateway" }}
# The gateway's fault page switches them through the Kubernetes API.
- name: KANSOKU_FLAGS_CONFIGMAP
  value: {{ printf "%s-flags" $fullname | quote }}
{{- end }}
{{- end }}
{{- if eq .component "gateway" }}
- name: KANSOKU_GATEWAY_EXPLORER_PUBLIC_URL
  value: {{ include "kansoku.explorerPublicUrl" $root | quote }}
# The proxies whose X-Forwarded-For the gateway believes — the ingress controller's
# addresses. Empty: none.
- name: KANSOKU_TRUSTED_PROXIES
  value: {{ $root.Values.trustedProxies | quote }}
{{- if and $root.Values.explorer.enabled $root.Values.explorer.auth }}
{{ include "kansoku.secretEnv" (dict "name" "KANSOKU_EXPLORER_TOKEN" "secret" $secret "key" "KANSOKU_EXPLORER_TOKEN") }}
{{- end }}
{{- end }}
{{- if eq .component "identity" }}
# Identity believes the X-Forwarded-For the gateway sends (the client's address, for the
# per-address login throttle) from any pod the network policies let reach it: the
# gateway's address is not known in advance, and left at loopback every login would seem
# to come from the gateway, so one guesser would lock logins for everyone. The
# per-account lock does not depend on addresses.
- name: KANSOKU_IDENTITY_TRUSTED_PROXIES
  value: "*"
{{- end }}
{{- if eq .component "explorer" }}
# The explorer's login, with generated credentials: a password for people, a token for
# programs (the gateway's dashboard).
- name: KANSOKU_EXPLORER_AUTH
  value: {{ $root.Values.explorer.auth | ternary "true" "false" | quote }}
{{- if $root.Values.explorer.auth }}
{{ include "kansoku.secretEnv" (dict "name" "KANSOKU_EXPLORER_PASSWORD" "secret" $secret "key" "KANSOKU_EXPLORER_PASSWORD") }}
{{ include "kansoku.secretEnv" (dict "name" "KANSOKU_EXPLORER_TOKEN" "secret" $secret "key" "KANSOKU_EXPLORER_TOKEN") }}
{{- end }}
{{- else }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ include "kansoku.otlpEndpoint" $root | quote }}
{{- with $root.Values.telemetry.protocol }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ . | quote }}
{{- end }}
{{- if and $root.Values.telemetry.headers (not $root.Values.collector.enabled) }}
{{ include "kansoku.secretEnv" (dict "name" "OTEL_EXPORTER_OTLP_HEADERS" "secret" $urls "key" "OTEL_EXPORTER_OTLP_HEADERS") }}
{{- end }}
- name: OTEL_EXPORTER_OTLP_TIMEOUT
  value: "5"
{{- range $name, $value := $root.Values.telemetry.extraEnv }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ printf "k8s.namespace.name=%s,k8s.pod.name=$(K8S_POD_NAME)" $root.Release.Namespace | quote }}
# The instrumentation approach: every service's own too, so an OpenTelemetry service
# knows when a neighbour runs X-Ray (it then speaks X-Amzn-Trace-Id as well).
- name: KANSOKU_INSTRUMENTATION
  value: {{ $root.Values.telemetry.instrumentation | quote }}
{{- range $name, $service := $root.Values.services }}
{{- with $service.instrumentation }}
- name: {{ printf "KANSOKU_%s_INSTRUMENTATION" (upper $name) }}
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- if include "kansoku.vendorIntakes" $root }}
# The X-Ray daemon, the CloudWatch agent and the New Relic collector: the explorer.
- name: AWS_XRAY_DAEMON_ADDRESS
  value: {{ printf "%s-explorer:2000" $fullname | quote }}
- name: AWS_EMF_AGENT_ENDPOINT
  value: {{ printf "udp://%s-explorer:25888" $fullname | quote }}
- name: NEW_RELIC_HOST
  value: {{ printf "%s-explorer" $fullname | quote }}
- name: NEW_RELIC_PORT
  value: "8443"
{{- end }}
{{- end }}
{{- end -}}

{{- define "kansoku.explorerPublicUrl" -}}
{{- if .Values.explorer.publicUrl -}}
{{- .Values.explorer.publicUrl -}}
{{- else if and .Values.ingress.enabled .Values.ingress.explorerHost -}}
{{- printf "%s://%s" ((empty .Values.ingress.tls.secretName) | ternary "http" "https") .Values.ingress.explorerHost -}}
{{- else -}}
{{- printf "http://%s-explorer:8800" (include "kansoku.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* A pod spec's common part: service account, no service links (a release named
`kansoku` would otherwise give every pod KANSOKU_CATALOG_PORT=tcp://… — kansoku's own
port setting), security context, pull secrets, placement. (dict "root" $ "component" C
"serviceAccount" NAME) */}}
{{- define "kansoku.podCommon" -}}
serviceAccountName: {{ .serviceAccount }}
automountServiceAccountToken: {{ .token | default false }}
enableServiceLinks: false
securityContext:
  {{- toYaml (.securityContext | default .root.Values.podSecurityContext) | nindent 2 }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if .root.Values.topologySpread.enabled }}
# Replicas on different nodes (and zones, where they can be): one node lost takes one.
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: {{ .root.Values.topologySpread.nodes }}
    labelSelector:
      matchLabels:
        {{- include "kansoku.selectorLabels" . | nindent 8 }}
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "kansoku.selectorLabels" . | nindent 8 }}
{{- end }}
{{- end -}}

{{/* A ServiceAccount: (dict "root" $ "component" C "name" NAME "annotations" MAP). */}}
{{- define "kansoku.serviceAccount" -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .name }}
  labels:
    {{- include "kansoku.labels" . | nindent 4 }}
  {{- with (merge (dict) (.annotations | default dict) .root.Values.serviceAccount.annotations) }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: false
{{- end -}}

{{/* A bounded scratch volume: (dict "name" N "size" S). */}}
{{- define "kansoku.emptyDir" -}}
- name: {{ .name }}
  emptyDir: {sizeLimit: {{ .size }}}
{{- end -}}
