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

{{/* The gateway image: by digest when one is given, else by tag. */}}
{{- define "shardgate.image" -}}
{{- if .Values.image.digest }}
{{- .Values.image.repository }}@{{ .Values.image.digest }}
{{- else }}
{{- .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}
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

{{- define "shardgate.adminKeySecret" -}}
{{- default (printf "%s-admin-key" (include "shardgate.fullname" .)) .Values.adminKey.existingSecret }}
{{- end }}

{{- define "shardgate.redisHost" -}}
{{ include "shardgate.fullname" . }}-redis
{{- end }}

{{/* CloudNativePG Cluster names: the metadata database's, and shard N's. */}}
{{- define "shardgate.metaCluster" -}}
{{ include "shardgate.fullname" . }}-meta
{{- end }}

{{/* The metadata database's address: its Cluster's -rw Service, or the given one. */}}
{{- define "shardgate.metaAddress" -}}
{{- if .Values.externalDatabases.enabled }}
{{- required "externalDatabases.metadata: the metadata database's host:port" .Values.externalDatabases.metadata }}
{{- else }}
{{- include "shardgate.metaCluster" . }}-rw:5432
{{- end }}
{{- end }}

{{/* The CloudNativePG Clusters the chart makes (none with externalDatabases): a list
     of dicts name, component. */}}
{{- define "shardgate.clusters" -}}
{{- $out := list }}
{{- if not .Values.externalDatabases.enabled }}
{{- $out = append $out (dict "name" (include "shardgate.metaCluster" .) "component" "metadata") }}
{{- range $i := until (int .Values.shards.count) }}
{{- $out = append $out (dict "name" (include "shardgate.shardCluster" (dict "ctx" $ "shard" $i)) "component" (printf "shard%d" $i)) }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{- define "shardgate.shardCluster" -}}
{{ include "shardgate.fullname" .ctx }}-shard{{ .shard }}
{{- end }}

{{/* What a restart of the gateways must follow besides the ConfigMap: the credentials
     they read from Secrets. A Secret given by reference counts by its live data (looked
     up; nothing offline); a chart-made one by its values (a generated password is kept
     across upgrades, so it changes nothing). */}}
{{- define "shardgate.secretsChecksum" -}}
{{- $parts := dict "user" .Values.database.user "password" .Values.database.password }}
{{- range $key, $name := dict "database" .Values.database.existingSecret "redis" (ternary .Values.redis.existingSecret "" .Values.redis.enabled) }}
{{- if $name }}
{{- $live := lookup "v1" "Secret" $.Release.Namespace $name }}
{{- $_ := set $parts $key (dict "name" $name "data" ($live.data | default dict)) }}
{{- end }}
{{- end }}
{{- toJson $parts | sha256sum }}
{{- end }}

{{/* Kubernetes' resource attributes of the pod, for OpenTelemetry (the downward API):
     every span the pod exports carries its pod, namespace and node. */}}
{{- define "shardgate.otelEnv" -}}
- name: K8S_POD_NAME
  valueFrom:
    fieldRef: { fieldPath: metadata.name }
- name: K8S_NAMESPACE_NAME
  valueFrom:
    fieldRef: { fieldPath: metadata.namespace }
- name: K8S_NODE_NAME
  valueFrom:
    fieldRef: { fieldPath: spec.nodeName }
- name: OTEL_RESOURCE_ATTRIBUTES
  value: "k8s.pod.name=$(K8S_POD_NAME),k8s.namespace.name=$(K8S_NAMESPACE_NAME),k8s.node.name=$(K8S_NODE_NAME)"
{{- end }}

{{/* Redis's pod and container securityContext: non-root, read-only root, no privileges. */}}
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
     look it up (offline rendering cannot: a new one each time); else `fresh` when
     given, or 32 random letters and digits. */}}
{{- define "shardgate.keptSecret" -}}
{{- $old := lookup "v1" "Secret" .ctx.Release.Namespace .name }}
{{- if and $old (index $old.data .key) }}
{{- index $old.data .key | b64dec }}
{{- else }}
{{- .fresh | default (randAlphaNum 32) }}
{{- end }}
{{- end }}

{{/* Backups through the Barman Cloud Plugin (backup.method plugin), not CloudNativePG's
     in-tree barmanObjectStore (legacy: deprecated in 1.26, removed in 1.31). */}}
{{- define "shardgate.pluginBackups" -}}
{{- if eq .Values.backup.method "plugin" }}true{{ end }}
{{- end }}

{{/* The Barman Cloud Plugin's name, as the operator knows it. */}}
{{- define "shardgate.barmanPlugin" -}}
barman-cloud.cloudnative-pg.io
{{- end }}

{{/* The plugin's ObjectStores: where every Cluster archives, and where a restore reads. */}}
{{- define "shardgate.backupStore" -}}
{{ include "shardgate.fullname" . }}-backup
{{- end }}

{{- define "shardgate.originStore" -}}
{{ include "shardgate.fullname" . }}-origin
{{- end }}

{{/* An object store's place and credentials (pass a dict: ctx, path, and server for the
     in-tree barmanObjectStore; the plugin's ObjectStore leaves serverName empty, each
     Cluster names its own in its plugin parameters). */}}
{{- define "shardgate.objectStore" -}}
{{- $b := .ctx.Values.backup }}
destinationPath: {{ required "backup.destinationPath (or recovery.destinationPath): the object store, s3://bucket/path" .path | quote }}
{{- with .server }}
serverName: {{ . | quote }}
{{- end }}
{{- with $b.endpointURL }}
endpointURL: {{ . | quote }}
{{- end }}
s3Credentials:
  accessKeyId:
    name: {{ required "backup.s3Credentials.secretName: the Secret holding the object store's keys" $b.s3Credentials.secretName }}
    key: {{ $b.s3Credentials.accessKeyIdKey }}
  secretAccessKey:
    name: {{ $b.s3Credentials.secretName }}
    key: {{ $b.s3Credentials.secretAccessKeyKey }}
  {{- with $b.s3Credentials.region }}
  region:
    name: {{ $b.s3Credentials.secretName }}
    key: {{ . }}
  {{- end }}
{{- end }}

{{/* The compression of WAL and base backups, under an object store's configuration. */}}
{{- define "shardgate.objectStoreCompression" -}}
{{- with .Values.backup.walCompression }}
wal:
  compression: {{ . }}
{{- end }}
{{- with .Values.backup.dataCompression }}
data:
  compression: {{ . }}
{{- end }}
{{- end }}

{{/* The release whose Clusters are restored, and where their backups are. */}}
{{- define "shardgate.recoverySource" -}}
{{- default (include "shardgate.fullname" .) .Values.recovery.sourceFullname }}
{{- end }}

{{- define "shardgate.recoveryPath" -}}
{{- default .Values.backup.destinationPath .Values.recovery.destinationPath }}
{{- end }}

{{/* CloudNativePG's recoveryTarget for the cluster-wide point: a name or a time. */}}
{{- define "shardgate.recoveryTarget" -}}
{{- $r := .Values.recovery }}
{{- if and $r.targetName $r.targetTime }}
{{- fail "recovery: give targetName or targetTime, not both" }}
{{- else if $r.targetName }}
targetName: {{ $r.targetName | quote }}
{{- else if $r.targetTime }}
targetTime: {{ $r.targetTime | quote }}
{{- else }}
{{- fail "recovery.enabled: give the point, recovery.targetName or recovery.targetTime" }}
{{- end }}
{{- if and .Values.backup.enabled (eq (include "shardgate.recoverySource" .) (include "shardgate.fullname" .)) (eq (include "shardgate.recoveryPath" .) .Values.backup.destinationPath) }}
{{- fail "recovery with backup on: the restored Clusters would archive into the archive they restore from (CloudNativePG refuses a non-empty one); install under another release name with recovery.sourceFullname, or set recovery.destinationPath to the old store and backup.destinationPath to a new one" }}
{{- end }}
{{- end }}
