{{/* Names and labels shared by every template. */}}

{{- define "shardgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's prefix; kept short so "<fullname>-shard<N>-rw" stays a valid name. */}}
{{- define "shardgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else if contains (include "shardgate.name" .) .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "shardgate.name" .) | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "shardgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "shardgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component (pass a dict: ctx, component). */}}
{{- define "shardgate.selector" -}}
app.kubernetes.io/name: {{ include "shardgate.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "shardgate.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "shardgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "shardgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The basic-auth Secret of the application role. */}}
{{- define "shardgate.dbSecret" -}}
{{- default (printf "%s-app" (include "shardgate.fullname" .)) .Values.database.existingSecret }}
{{- end }}

{{- define "shardgate.redisSecret" -}}
{{- default (printf "%s-redis" (include "shardgate.fullname" .)) .Values.redis.existingSecret }}
{{- end }}

{{- define "shardgate.redisHost" -}}
{{ include "shardgate.fullname" . }}-redis
{{- end }}

{{/* CloudNativePG Cluster names: the metadata database's, and shard N's. */}}
{{- define "shardgate.metaCluster" -}}
{{ include "shardgate.fullname" . }}-meta
{{- end }}

{{- define "shardgate.shardCluster" -}}
{{ include "shardgate.fullname" .ctx }}-shard{{ .shard }}
{{- end }}

{{/* A pod's and a container's securityContext: non-root, read-only root, no privileges. */}}
{{- define "shardgate.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
fsGroup: {{ .uid }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "shardgate.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
{{- end }}

{{/* The environment the gateway and the admin CLI share: the role's credentials and
     the cache's URL with Redis's password, never in the ConfigMap. */}}
{{- define "shardgate.env" -}}
- name: SHARDGATE__DATABASE__USER
  valueFrom:
    secretKeyRef: { name: {{ include "shardgate.dbSecret" . }}, key: username }
- name: SHARDGATE__DATABASE__PASSWORD
  valueFrom:
    secretKeyRef: { name: {{ include "shardgate.dbSecret" . }}, key: password }
{{- if .Values.redis.enabled }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef: { name: {{ include "shardgate.redisSecret" . }}, key: password }
- name: SHARDGATE__CACHE__URL
  value: "redis://:$(REDIS_PASSWORD)@{{ include "shardgate.redisHost" . }}:6379"
{{- end }}
{{- with .Values.gateway.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* A generated secret value that survives upgrades: the live Secret's, when Helm can
     look it up (offline rendering cannot: a new one each time). */}}
{{- define "shardgate.keptSecret" -}}
{{- $old := lookup "v1" "Secret" .ctx.Release.Namespace .name }}
{{- if and $old (index $old.data .key) }}
{{- index $old.data .key | b64dec }}
{{- else }}
{{- randAlphaNum 32 }}
{{- end }}
{{- end }}
