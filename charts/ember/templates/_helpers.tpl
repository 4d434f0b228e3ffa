{{/* Names, labels and the rendered agent config. */}}

{{- define "ember.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ember.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "ember.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ember.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ember.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "ember.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "ember.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ember.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Where Secrets and host paths appear inside the container. */}}
{{- define "ember.authDir" -}}/var/run/secrets/ember/auth{{- end -}}
{{- define "ember.tlsDir" -}}/var/run/secrets/ember/tls{{- end -}}

{{/*
The Secret holding the server credential: the user's, or the one this chart
creates from server.auth.value. Empty when there is no credential.
*/}}
{{- define "ember.authSecretName" -}}
{{- $a := .Values.server.auth -}}
{{- if ne (toString $a.type) "none" -}}
{{- if $a.existingSecret -}}
{{- $a.existingSecret -}}
{{- else if $a.value -}}
{{- printf "%s-auth" (include "ember.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "ember.authSecretKey" -}}
{{- $a := .Values.server.auth -}}
{{- if and $a.existingSecret $a.secretKey -}}
{{- $a.secretKey -}}
{{- else if eq (toString $a.type) "basic" -}}
password
{{- else -}}
token
{{- end -}}
{{- end -}}

{{/* Fails the render on values that cannot work. */}}
{{- define "ember.validate" -}}
{{- $s := .Values.server -}}
{{- $type := toString $s.auth.type -}}
{{- if not (has $type (list "none" "bearer" "basic")) -}}
{{- fail (printf "server.auth.type must be none, bearer or basic, got %q" $type) -}}
{{- end -}}
{{- if not (has (toString $s.api) (list "push" "ingest" "otlp")) -}}
{{- fail (printf "server.api must be push, ingest or otlp, got %q" (toString $s.api)) -}}
{{- end -}}
{{- if ne $type "none" -}}
{{- if not $s.url -}}
{{- fail "server.auth is set but server.url is empty" -}}
{{- end -}}
{{- if and $s.auth.existingSecret $s.auth.value -}}
{{- fail "server.auth: set existingSecret or value, not both" -}}
{{- end -}}
{{- if not (or $s.auth.existingSecret $s.auth.value) -}}
{{- fail (printf "server.auth.type is %s: set server.auth.existingSecret (a Secret holding the %s) or server.auth.value" $type (ternary "password" "token" (eq $type "basic"))) -}}
{{- end -}}
{{- if and (eq $type "basic") (not $s.auth.username) -}}
{{- fail "server.auth.type is basic: set server.auth.username" -}}
{{- end -}}
{{- end -}}
{{- if ne (empty $s.tls.certKey) (empty $s.tls.keyKey) -}}
{{- fail "server.tls: certKey and keyKey go together" -}}
{{- end -}}
{{- if and (or $s.tls.certKey $s.tls.keyKey) (not $s.tls.existingSecret) -}}
{{- fail "server.tls: certKey and keyKey need server.tls.existingSecret" -}}
{{- end -}}
{{- if and .Values.securityContext.privileged (not (has (toString .Values.securityContext.appArmorProfile) (list "" "unconfined" "runtime/default"))) -}}
{{- fail "securityContext.appArmorProfile must be unconfined, runtime/default or empty" -}}
{{- end -}}
{{- end -}}

{{/*
ember.yaml: .Values.config without its empty maps and lists, overlaid with
what the chart decides (servers, paths, metrics, kubernetes, directories).
*/}}
{{- define "ember.config" -}}
{{- $cfg := dict -}}
{{- range $k, $v := deepCopy (default dict .Values.config) -}}
{{- if or (kindIs "bool" $v) (kindIs "float64" $v) (kindIs "int64" $v) (kindIs "int" $v) (not (empty $v)) -}}
{{- $_ := set $cfg $k $v -}}
{{- end -}}
{{- end -}}
{{- $managed := dict -}}
{{- $_ := set $managed "paths" (dict "proc" "/host/proc") -}}
{{- $_ := set $managed "output" (dict "directory" "/var/lib/ember/profiles") -}}
{{- $debuginfod := dict "cache_dir" "/var/cache/ember/debuginfod" -}}
{{- $sym := dict "debuginfod" $debuginfod -}}
{{- if .Values.hostMounts.debugDir -}}
{{- $_ := set $sym "debug_dir" "/host/debug" -}}
{{- end -}}
{{- $_ := set $managed "symbolizer" $sym -}}
{{- if .Values.metrics.enabled -}}
{{- $_ := set $managed "metrics" (dict "listen" (printf "%s:%d" (toString .Values.metrics.listenAddress) (int .Values.metrics.port))) -}}
{{- else -}}
{{- $_ := set $managed "metrics" (dict "listen" "") -}}
{{- end -}}
{{- $k8s := dict "enabled" (.Values.kubernetes.enabled | default false) -}}
{{- if .Values.kubernetes.apiServer -}}{{- $_ := set $k8s "api_server" .Values.kubernetes.apiServer -}}{{- end -}}
{{- if .Values.kubernetes.tokenFile -}}{{- $_ := set $k8s "token_file" .Values.kubernetes.tokenFile -}}{{- end -}}
{{- if .Values.kubernetes.caFile -}}{{- $_ := set $k8s "ca_file" .Values.kubernetes.caFile -}}{{- end -}}
{{- $_ := set $managed "kubernetes" $k8s -}}
{{- $s := .Values.server -}}
{{- if $s.url -}}
{{- $srv := dict "url" $s.url "api" $s.api -}}
{{- if $s.name -}}{{- $_ := set $srv "name" $s.name -}}{{- end -}}
{{- if $s.tenantId -}}{{- $_ := set $srv "tenant_id" (toString $s.tenantId) -}}{{- end -}}
{{- if $s.headers -}}{{- $_ := set $srv "headers" $s.headers -}}{{- end -}}
{{- $file := printf "%s/%s" (include "ember.authDir" .) (include "ember.authSecretKey" .) -}}
{{- if eq (toString $s.auth.type) "bearer" -}}
{{- $_ := set $srv "bearer_token_file" $file -}}
{{- else if eq (toString $s.auth.type) "basic" -}}
{{- $_ := set $srv "basic_auth" (dict "username" $s.auth.username "password_file" $file) -}}
{{- end -}}
{{- $tls := dict -}}
{{- if $s.tls.existingSecret -}}
{{- if $s.tls.caKey -}}{{- $_ := set $tls "ca_file" (printf "%s/%s" (include "ember.tlsDir" .) $s.tls.caKey) -}}{{- end -}}
{{- if $s.tls.certKey -}}
{{- $_ := set $tls "cert_file" (printf "%s/%s" (include "ember.tlsDir" .) $s.tls.certKey) -}}
{{- $_ := set $tls "key_file" (printf "%s/%s" (include "ember.tlsDir" .) $s.tls.keyKey) -}}
{{- end -}}
{{- end -}}
{{- if $s.tls.serverName -}}{{- $_ := set $tls "server_name" $s.tls.serverName -}}{{- end -}}
{{- if $s.tls.insecureSkipVerify -}}{{- $_ := set $tls "insecure_skip_verify" true -}}{{- end -}}
{{- if $tls -}}{{- $_ := set $srv "tls" $tls -}}{{- end -}}
{{- $_ := set $managed "servers" (list $srv) -}}
{{- end -}}
{{- toYaml (mustMergeOverwrite $cfg $managed) -}}
{{- end -}}
