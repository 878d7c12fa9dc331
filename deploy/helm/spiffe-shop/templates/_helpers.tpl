{{/*
Common labels of every object of the release.
*/}}
{{- define "shop.labels" -}}
app.kubernetes.io/part-of: spiffe-shop
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/*
shop.selector: the labels that select one service's pods. Call with
(dict "root" $ "name" "payment").
*/}}
{{- define "shop.selector" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/*
shop.spiffeId: the SPIFFE ID a service presents and its peers require. Call
with (dict "root" $ "name" "payment").
*/}}
{{- define "shop.spiffeId" -}}
{{- $svc := index .root.Values.services .name -}}
{{- if $svc.spiffeId -}}
{{- $svc.spiffeId -}}
{{- else -}}
{{- printf "spiffe://%s/ns/%s/sa/%s" .root.Values.trustDomain .root.Release.Namespace $svc.serviceAccount -}}
{{- end -}}
{{- end -}}

{{/*
shop.identity: "spiffe" or "files" for one service (its own value, else the global one).
*/}}
{{- define "shop.identity" -}}
{{- $svc := index .root.Values.services .name -}}
{{- default .root.Values.identity $svc.identity -}}
{{- end -}}

{{/*
shop.image: a service's image reference.
*/}}
{{- define "shop.image" -}}
{{- $svc := index .root.Values.services .name -}}
{{- printf "%s:%s" $svc.image.repository (default (default .root.Chart.AppVersion .root.Values.image.tag) $svc.image.tag) -}}
{{- end -}}

{{/*
shop.identityEnv: the environment variables that choose the identity source.
*/}}
{{- define "shop.identityEnv" -}}
{{- if eq (include "shop.identity" .) "spiffe" }}
- name: SPIFFE_ENDPOINT_SOCKET
  value: {{ printf "unix:///spiffe-workload-api/%s" .root.Values.spiffe.socketName | quote }}
{{- if .root.Values.trustBridge.secret }}
- name: TRUST_BRIDGE_CA_FILE
  value: /etc/shop/trust-bridge/ca.crt
{{- end }}
{{- else }}
- name: TLS_CERT_FILE
  value: /etc/shop/tls/tls.crt
- name: TLS_KEY_FILE
  value: /etc/shop/tls/tls.key
- name: TLS_CA_FILE
  value: /etc/shop/trust/ca.crt
{{- end }}
{{- end -}}

{{/*
shop.identityMounts and shop.identityVolumes: the socket directory (spiffe)
or the Secrets (files). Secrets are mounted as directories, never with
subPath: only then does the kubelet update them in place (it swaps the
..data symlink), which the file source follows.
*/}}
{{- define "shop.identityMounts" -}}
{{- if eq (include "shop.identity" .) "spiffe" }}
- name: spiffe-workload-api
  mountPath: /spiffe-workload-api
  readOnly: true
{{- if .root.Values.trustBridge.secret }}
- name: trust-bridge
  mountPath: /etc/shop/trust-bridge
  readOnly: true
{{- end }}
{{- else }}
- name: tls
  mountPath: /etc/shop/tls
  readOnly: true
- name: trust
  mountPath: /etc/shop/trust
  readOnly: true
{{- end }}
{{- end -}}

{{- define "shop.identityVolumes" -}}
{{- $svc := index .root.Values.services .name -}}
{{- if eq (include "shop.identity" .) "spiffe" }}
# A read-only hostPath directory, not the SPIFFE CSI driver: see docs/kubernetes.md#identity.
- name: spiffe-workload-api
  hostPath:
    path: {{ .root.Values.spiffe.socketDir }}
    type: Directory
{{- if .root.Values.trustBridge.secret }}
- name: trust-bridge
  secret:
    secretName: {{ .root.Values.trustBridge.secret }}
    defaultMode: 0444
{{- end }}
{{- else }}
- name: tls
  secret:
    secretName: {{ $svc.tlsSecret }}
    defaultMode: 0440
- name: trust
  secret:
    secretName: {{ .root.Values.files.trustSecret }}
    defaultMode: 0444
{{- end }}
{{- end -}}

{{/*
shop.databaseEnv: the DATABASE_* variables from services.<name>.database.
Nothing when neither url nor urlSecret is set: the service keeps SQLite under
DATA_DIR. Numbers are passed only when set (hasKey, so 0 is passed too).
*/}}
{{- define "shop.databaseEnv" -}}
{{- $db := (index .root.Values.services .name).database | default dict -}}
{{- if or $db.url $db.urlSecret }}
- name: DATABASE_URL
{{- if $db.urlSecret }}
  valueFrom:
    secretKeyRef:
      name: {{ $db.urlSecret }}
      key: url
{{- else }}
  value: {{ $db.url | quote }}
{{- end }}
{{- if $db.auth }}
- name: DATABASE_AUTH
  value: {{ $db.auth | quote }}
{{- end }}
{{- if $db.caSecret }}
- name: DATABASE_CA_FILE
  value: /etc/shop/database-ca/ca.crt
{{- end }}
{{- if $db.passwordSecret }}
- name: DATABASE_PASSWORD_FILE
  value: /etc/shop/database-password/password
{{- end }}
{{- range $key, $var := dict "poolMax" "DATABASE_POOL_MAX" "statementTimeoutMs" "DATABASE_STATEMENT_TIMEOUT_MS" "connectWaitSeconds" "DATABASE_CONNECT_WAIT_SECONDS" }}
{{- if hasKey $db $key }}
- name: {{ $var }}
  value: {{ index $db $key | toString | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
shop.databaseMounts and shop.databaseVolumes: the Secrets holding the CA that
verifies the database server (ca.crt) and the password (password), as
directories like the identity Secrets, so a replaced Secret is followed.
*/}}
{{- define "shop.databaseMounts" -}}
{{- $db := (index .root.Values.services .name).database | default dict -}}
{{- if or $db.url $db.urlSecret }}
{{- if $db.caSecret }}
- name: database-ca
  mountPath: /etc/shop/database-ca
  readOnly: true
{{- end }}
{{- if $db.passwordSecret }}
- name: database-password
  mountPath: /etc/shop/database-password
  readOnly: true
{{- end }}
{{- end }}
{{- end -}}

{{- define "shop.databaseVolumes" -}}
{{- $db := (index .root.Values.services .name).database | default dict -}}
{{- if or $db.url $db.urlSecret }}
{{- if $db.caSecret }}
- name: database-ca
  secret:
    secretName: {{ $db.caSecret }}
    items: [{ key: ca.crt, path: ca.crt }]
    defaultMode: 0444
{{- end }}
{{- if $db.passwordSecret }}
- name: database-password
  secret:
    secretName: {{ $db.passwordSecret }}
    items: [{ key: password, path: password }]
    defaultMode: 0440
{{- end }}
{{- end }}
{{- end -}}

{{/*
shop.extraEnv: services.<name>.env as a list, sorted by name.
*/}}
{{- define "shop.extraEnv" -}}
{{- range $k, $v := .env }}
- name: {{ $k }}
  value: {{ $v | toString | quote }}
{{- end }}
{{- end -}}

{{/*
shop.deployment: one service's ServiceAccount, Deployment and Service. Call
with (dict "root" $ "name" "payment" "ports" (list (dict "name" "https" "port" 8443)) "env" "<yaml list>" "podLabels" (dict)).
The ops port is added to the ports, and probed.
*/}}
{{- define "shop.deployment" -}}
{{- $root := .root -}}
{{- $svc := index $root.Values.services .name -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $svc.serviceAccount }}
  labels:
    {{- include "shop.labels" $root | nindent 4 }}
    app.kubernetes.io/name: {{ .name }}
# Only the SPIRE agent reads pods (the k8s workload attestor); the services
# never call the API server.
automountServiceAccountToken: false
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .name }}
  labels:
    {{- include "shop.labels" $root | nindent 4 }}
    app.kubernetes.io/name: {{ .name }}
    app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
spec:
  replicas: {{ $svc.replicas }}
  revisionHistoryLimit: 3
  selector:
    matchLabels:
      {{- include "shop.selector" (dict "root" $root "name" .name) | nindent 6 }}
  # A new pod is ready (identity, store, listeners) before an old one stops.
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 1
  template:
    metadata:
      labels:
        {{- include "shop.labels" $root | nindent 8 }}
        app.kubernetes.io/name: {{ .name }}
        spiffe-shop/identity: {{ include "shop.identity" . }}
        {{- with .podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ $svc.serviceAccount }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ $root.Values.terminationGracePeriodSeconds }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      containers:
        - name: {{ .name }}
          image: {{ include "shop.image" . | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          securityContext:
            {{- toYaml $root.Values.containerSecurityContext | nindent 12 }}
          ports:
            {{- range .ports }}
            - name: {{ .name }}
              containerPort: {{ .port }}
            {{- end }}
            - name: ops
              containerPort: {{ $svc.opsPort }}
          env:
            - name: HOST
              value: 0.0.0.0
            - name: OPS_PORT
              value: {{ $svc.opsPort | quote }}
            - name: TRUST_DOMAIN
              value: {{ $root.Values.trustDomain | quote }}
            - name: DATA_DIR
              value: /data/{{ .name }}
            {{- include "shop.identityEnv" . | trim | nindent 12 }}
            {{- with include "shop.databaseEnv" . | trim }}
            {{- . | nindent 12 }}
            {{- end }}
            {{- .env | trim | nindent 12 }}
            {{- with include "shop.extraEnv" $svc | trim }}
            {{- . | nindent 12 }}
            {{- end }}
          # Live as soon as the process runs; ready once it has its identity
          # and its store (503 with the reason until then).
          livenessProbe:
            httpGet: { path: /health/live, port: ops }
            periodSeconds: 10
            failureThreshold: 3
          readinessProbe:
            httpGet: { path: /health/ready, port: ops }
            periodSeconds: 2
            failureThreshold: 2
          lifecycle:
            preStop:
              sleep:
                seconds: {{ $root.Values.preStopSeconds }}
          resources:
            {{- toYaml $svc.resources | nindent 12 }}
          volumeMounts:
            - name: data
              mountPath: /data/{{ .name }}
            - name: tmp
              mountPath: /tmp
            {{- include "shop.identityMounts" . | trim | nindent 12 }}
            {{- with include "shop.databaseMounts" . | trim }}
            {{- . | nindent 12 }}
            {{- end }}
      volumes:
        # The SQLite store: with the pod, or on a claim that a replacement pod
        # (on the same node: SQLite locks are per host) opens too.
        - name: data
          {{- if $svc.dataClaim }}
          persistentVolumeClaim:
            claimName: {{ $svc.dataClaim }}
          {{- else }}
          emptyDir: {}
          {{- end }}
        - name: tmp
          emptyDir: { medium: Memory, sizeLimit: 16Mi }
        {{- include "shop.identityVolumes" . | trim | nindent 8 }}
        {{- with include "shop.databaseVolumes" . | trim }}
        {{- . | nindent 8 }}
        {{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .name }}
  labels:
    {{- include "shop.labels" $root | nindent 4 }}
    app.kubernetes.io/name: {{ .name }}
spec:
  type: {{ default "ClusterIP" $svc.serviceType }}
  selector:
    {{- include "shop.selector" (dict "root" $root "name" .name) | nindent 4 }}
  ports:
    {{- range .ports }}
    - name: {{ .name }}
      port: {{ .port }}
      targetPort: {{ .name }}
      {{- if .appProtocol }}
      appProtocol: {{ .appProtocol }}
      {{- end }}
    {{- end }}
    - name: ops
      port: {{ $svc.opsPort }}
      targetPort: ops
{{- end -}}
