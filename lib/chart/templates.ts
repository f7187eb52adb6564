/**
 * Text of the chart's templates (Go text/template + Sprig + Helm functions). `render.ts` computes
 * the same objects in TypeScript; any change here must be mirrored there (the chart-render
 * interop tests compare both for every workload type and SGX device mode).
 */
import type { ChartVolumeEntry } from './values.js';
import { IMAGE_REQUIRED, RUNTIME_CLASS_REQUIRED } from './values.js';
import type { Runtime } from './options.js';

/** Name of the environment variable that tells the Gramine loader script which loader to exec. */
export const GRAMINE_LOADER_ENV = 'ENCLAVIFY_GRAMINE_LOADER';

/** Go template string literal (the same escapes as a JSON string, for ASCII text). */
function lit(s: string): string {
  return JSON.stringify(s);
}

/**
 * `dict "vol-name" "valuesKey" ...`: the table of the chart's volumes, ranged over by the workload
 * and PVC templates (Go ranges a map in sorted key order).
 */
function volumeTable(volumes: ChartVolumeEntry[]): string {
  return ['dict', ...volumes.flatMap((v) => [lit(v.volumeName), lit(v.valuesKey)])].join(' ');
}

/** templates/_helpers.tpl: name helpers as `helm create` writes them, labels, and the runtime env. */
export function helpersTpl(chart: string, runtime: Runtime): string {
  const env = runtime === 'scone' ? sconeEnv(chart) : runtime === 'coco' ? cocoEnv(chart) : gramineEnv(chart);
  return `{{/*
Chart name, or nameOverride: a DNS-1123 label (63 characters at most, no trailing "-").
*/}}
{{- define "${chart}.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the resources: fullnameOverride, or "<release>-<name>" (just the release name when it
already contains the chart name), truncated to 63 characters like helm create does.
*/}}
{{- define "${chart}.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
"<chart>-<version>", the helm.sh/chart label.
*/}}
{{- define "${chart}.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "${chart}.labels" -}}
helm.sh/chart: {{ include "${chart}.chart" . }}
{{ include "${chart}.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels that select the pods.
*/}}
{{- define "${chart}.selectorLabels" -}}
app.kubernetes.io/name: {{ include "${chart}.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Spec of a PersistentVolumeClaim (or volumeClaimTemplate) from a volume's persistence values.
*/}}
{{- define "${chart}.claimSpec" -}}
{{- $spec := dict "accessModes" (list (default "ReadWriteOnce" .accessMode)) "resources" (dict "requests" (dict "storage" (default "1Gi" .size))) }}
{{- with .storageClass }}
{{- $_ := set $spec "storageClassName" (ternary "" (toString .) (eq (toString .) "-")) }}
{{- end }}
{{- toYaml $spec }}
{{- end }}

${env}`;
}

function cocoEnv(chart: string): string {
  return `{{/*
CoCo environment: the TEE the image was made for. No SGX: the whole pod is the TEE (a Kata guest).
*/}}
{{- define "${chart}.runtimeEnv" -}}
- name: ENCLAVIFY_TEE
  value: {{ (default (dict) .Values.coco).tee | quote }}
{{- end }}
`;
}

function sconeEnv(chart: string): string {
  return `{{/*
SCONE environment: CAS, LAS (the node's IP when scone.las is empty: the LAS runs as a DaemonSet
on every node), the policy to run, and the enclave settings. A setting that is empty is not set,
so the image's value applies.
*/}}
{{- define "${chart}.runtimeEnv" -}}
{{- $s := default (dict) .Values.scone }}
{{- with $s.cas }}
- name: SCONE_CAS_ADDR
  value: {{ . | quote }}
{{- end }}
{{- if $s.las }}
- name: SCONE_LAS_ADDR
  value: {{ $s.las | quote }}
{{- else }}
- name: SCONE_LAS_ADDR
  valueFrom:
    fieldRef:
      fieldPath: status.hostIP
{{- end }}
{{- with $s.configID }}
- name: SCONE_CONFIG_ID
  value: {{ . | quote }}
{{- end }}
{{- range $pair := list (list "SCONE_ALLOW_DLOPEN" "allowDlOpen") (list "SCONE_HEAP" "heap") (list "SCONE_STACK" "stack") (list "SCONE_FORK" "fork") (list "SCONE_LOG" "log") }}
{{- $v := index $s (index $pair 1) }}
{{- if not (or (kindIs "invalid" $v) (eq (toString $v) "")) }}
- name: {{ index $pair 0 }}
  value: {{ $v | quote }}
{{- end }}
{{- end }}
{{- if $s.printVersion }}
- name: SCONE_VERSION
  value: "1"
{{- end }}
{{- end }}

{{/*
Whether the pod needs SGX at all (always, for SCONE).
*/}}
{{- define "${chart}.needsSGX" -}}
true
{{- end }}
`;
}

function gramineEnv(chart: string): string {
  return `{{/*
Gramine environment: which loader the entrypoint starts (${GRAMINE_LOADER_ENV}), and the
secret-provisioning settings that are set.
*/}}
{{- define "${chart}.runtimeEnv" -}}
{{- $g := default (dict) .Values.gramine -}}
- name: ${GRAMINE_LOADER_ENV}
  value: {{ $g.loader | quote }}
{{- $sp := default (dict) $g.secretProvision }}
{{- with $sp.servers }}
- name: SECRET_PROVISION_SERVERS
  value: {{ . | quote }}
{{- end }}
{{- with $sp.setKey }}
- name: SECRET_PROVISION_SET_KEY
  value: {{ . | quote }}
{{- end }}
{{- with $sp.caChainPath }}
- name: SECRET_PROVISION_CA_CHAIN_PATH
  value: {{ . | quote }}
{{- end }}
{{- end }}

{{/*
Whether the pod needs SGX: not when gramine.loader is "direct" (no enclave).
*/}}
{{- define "${chart}.needsSGX" -}}
{{- $loader := toString (default (dict) .Values.gramine).loader }}
{{- if not (has $loader (list "sgx" "direct")) }}
{{- fail (printf "gramine.loader must be sgx or direct (got %q)" $loader) }}
{{- end }}
{{- if eq $loader "sgx" }}true{{ end }}
{{- end }}
`;
}

/** templates/workload.yaml: one template for all four kinds, switched by `.Values.workloadType`. */
export function workloadTemplate(chart: string, runtime: Runtime, volumes: ChartVolumeEntry[]): string {
  // CoCo pods request no SGX device: the Kata guest is the TEE. Its chart has none of the SGX parts.
  const sgxCheck = runtime === 'coco' ? `{{- $runtimeClass := required ${lit(RUNTIME_CLASS_REQUIRED)} .Values.runtimeClassName }}` : `{{- $mode := toString .Values.useSGXDevPlugin }}
{{- if not (has $mode (list "scone" "intel" "azure" "disabled")) }}
{{- fail (printf "useSGXDevPlugin must be one of scone, intel, azure, disabled (got %q)" $mode) }}
{{- end }}
{{- $sgx := eq (include "${chart}.needsSGX" .) "true" }}`;
  const sgxDevices = runtime === 'coco' ? '' : `{{- if $sgx }}
{{- if eq $mode "scone" }}
{{- $_ := set $limits "sgx.k8s.io/sgx" 1 }}
{{- else if eq $mode "intel" }}
{{- $_ := set $limits "sgx.intel.com/epc" (printf "%vMi" .Values.sgxEpcMem) }}
{{- $_ := set $limits "sgx.intel.com/enclave" 1 }}
{{- if .Values.sgxProvision }}
{{- $_ := set $limits "sgx.intel.com/provision" 1 }}
{{- end }}
{{- else if eq $mode "azure" }}
{{- $_ := set $limits "kubernetes.azure.com/sgx_epc_mem_in_MiB" .Values.sgxEpcMem }}
{{- else if eq $mode "disabled" }}
{{- $_ := set $securityContext "privileged" true }}
{{- $volumes = append $volumes (dict "name" "sgx-enclave" "hostPath" (dict "path" "/dev/sgx_enclave" "type" "CharDevice")) }}
{{- $volumes = append $volumes (dict "name" "sgx-provision" "hostPath" (dict "path" "/dev/sgx_provision" "type" "CharDevice")) }}
{{- $mounts = append $mounts (dict "name" "sgx-enclave" "mountPath" "/dev/sgx_enclave") }}
{{- $mounts = append $mounts (dict "name" "sgx-provision" "mountPath" "/dev/sgx_provision") }}
{{- end }}
{{- end }}
`;
  const aesmd =
    runtime === 'gramine'
      ? `
{{- with (default (dict) .Values.gramine).aesmdSocketDir }}
{{- $volumes = append $volumes (dict "name" "aesmd-socket" "hostPath" (dict "path" . "type" "Directory")) }}
{{- $mounts = append $mounts (dict "name" "aesmd-socket" "mountPath" "/var/run/aesmd") }}
{{- end }}`
      : '';
  return `{{- /* Validation: bad values fail rendering with a message. */}}
{{- $type := toString .Values.workloadType }}
{{- $kinds := dict "deployment" "Deployment" "statefulset" "StatefulSet" "daemonset" "DaemonSet" "job" "Job" }}
{{- if not (hasKey $kinds $type) }}
{{- fail (printf "workloadType must be one of deployment, statefulset, daemonset, job (got %q)" $type) }}
{{- end }}
${sgxCheck}
{{- $fullname := include "${chart}.fullname" . }}
{{- $image := required ${lit(IMAGE_REQUIRED)} .Values.image }}

{{- /* SGX device: resources of the device plugin, or hostPath devices in a privileged container. */}}
{{- $resources := deepCopy (default (dict) .Values.resources) }}
{{- $limits := deepCopy (default (dict) (index $resources "limits")) }}
{{- $securityContext := deepCopy (default (dict) .Values.securityContext) }}
{{- $volumes := list }}
{{- $mounts := list }}
{{- $claims := list }}
${sgxDevices}{{- if $limits }}
{{- $_ := set $resources "limits" $limits }}
{{- end }}
${aesmd}

{{- /* Volumes: emptyDir, a claim (created by pvc.yaml or existing), or a volumeClaimTemplate. */}}
{{- range $name, $key := ${volumeTable(volumes)} }}
{{- $vol := default (dict) (index $.Values $key) }}
{{- $p := default (dict) $vol.persistence }}
{{- $mounts = append $mounts (dict "name" $name "mountPath" (required (printf "%s.mountPath is required" $key) $vol.mountPath)) }}
{{- if and $p.enabled (not $p.existingClaim) (eq $type "statefulset") }}
{{- $claims = append $claims (dict "metadata" (dict "name" $name) "spec" (include "${chart}.claimSpec" $p | fromYaml)) }}
{{- else if $p.enabled }}
{{- $claim := default (printf "%s-%s" $fullname $name | trunc 63 | trimSuffix "-") $p.existingClaim }}
{{- $volumes = append $volumes (dict "name" $name "persistentVolumeClaim" (dict "claimName" $claim)) }}
{{- else }}
{{- $volumes = append $volumes (dict "name" $name "emptyDir" (dict)) }}
{{- end }}
{{- end }}

{{- /* Container ports: the exposed ports, whether or not the Service is enabled. */}}
{{- $ports := list }}
{{- with .Values.service }}
{{- with .targetPort }}
{{- $ports = append $ports . }}
{{- end }}
{{- range .extraPorts }}
{{- $ports = append $ports . }}
{{- end }}
{{- end }}
apiVersion: {{ ternary "batch/v1" "apps/v1" (eq $type "job") }}
kind: {{ index $kinds $type }}
metadata:
  name: {{ $fullname }}
  labels:
    {{- include "${chart}.labels" . | nindent 4 }}
spec:
  {{- if has $type (list "deployment" "statefulset") }}
  replicas: {{ .Values.replicaCount }}
  {{- end }}
  {{- if eq $type "statefulset" }}
  serviceName: {{ $fullname }}
  {{- end }}
  {{- if eq $type "job" }}
  {{- $job := default (dict) .Values.job }}
  {{- if hasKey $job "backoffLimit" }}
  backoffLimit: {{ $job.backoffLimit }}
  {{- end }}
  {{- else }}
  selector:
    matchLabels:
      {{- include "${chart}.selectorLabels" . | nindent 6 }}
  {{- end }}
  template:
    metadata:
      {{- with .Values.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      labels:
        {{- include "${chart}.selectorLabels" . | nindent 8 }}
    spec:${runtime === 'coco' ? `
      runtimeClassName: {{ $runtimeClass }}` : ''}
      {{- if eq $type "job" }}
      restartPolicy: {{ default "Never" (default (dict) .Values.job).restartPolicy }}
      {{- end }}
      {{- with .Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.podSecurityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ include "${chart}.name" . }}
          image: {{ $image | quote }}
          {{- with .Values.imagePullPolicy }}
          imagePullPolicy: {{ . }}
          {{- end }}
          {{- with .Values.command }}
          command:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with .Values.args }}
          args:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          env:
            {{- include "${chart}.runtimeEnv" . | trim | nindent 12 }}
            {{- range $k, $v := .Values.env }}
            - name: {{ $k | quote }}
              value: {{ $v | quote }}
            {{- end }}
            {{- with .Values.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- with $ports }}
          ports:
            {{- range . }}
            - name: {{ printf "port-%v" . }}
              containerPort: {{ . }}
              protocol: TCP
            {{- end }}
          {{- end }}
          {{- with $securityContext }}
          securityContext:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with $resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with $mounts }}
          volumeMounts:
            {{- toYaml . | nindent 12 }}
          {{- end }}
      {{- with $volumes }}
      volumes:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
  {{- with $claims }}
  volumeClaimTemplates:
    {{- toYaml . | nindent 4 }}
  {{- end }}
`;
}

/** templates/service.yaml: a Service for the exposed ports, when `service.enabled`. */
export function serviceTemplate(chart: string): string {
  return `{{- with .Values.service }}
{{- if .enabled }}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "${chart}.fullname" $ }}
  labels:
    {{- include "${chart}.labels" $ | nindent 4 }}
spec:
  type: {{ .type }}
  selector:
    {{- include "${chart}.selectorLabels" $ | nindent 4 }}
  ports:
    - name: {{ printf "port-%v" .targetPort }}
      port: {{ .port }}
      targetPort: {{ .targetPort }}
      protocol: TCP
    {{- range .extraPorts }}
    - name: {{ printf "port-%v" . }}
      port: {{ . }}
      targetPort: {{ . }}
      protocol: TCP
    {{- end }}
{{- end }}
{{- end }}
`;
}

/**
 * templates/pvc.yaml: a PersistentVolumeClaim for each volume with persistence enabled and no
 * existing claim (not for statefulsets, which use volumeClaimTemplates).
 */
export function pvcTemplate(chart: string, volumes: ChartVolumeEntry[]): string {
  return `{{- $fullname := include "${chart}.fullname" . }}
{{- range $name, $key := ${volumeTable(volumes)} }}
{{- $vol := default (dict) (index $.Values $key) }}
{{- $p := default (dict) $vol.persistence }}
{{- if and $p.enabled (not $p.existingClaim) (ne (toString $.Values.workloadType) "statefulset") }}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ printf "%s-%s" $fullname $name | trunc 63 | trimSuffix "-" }}
  labels:
    {{- include "${chart}.labels" $ | nindent 4 }}
spec:
  {{- include "${chart}.claimSpec" $p | nindent 2 }}
{{- end }}
{{- end }}
`;
}

/** templates/NOTES.txt: printed by `helm install`. */
export function notesTemplate(chart: string, runtime: Runtime): string {
  const runtimeNote =
    runtime === 'coco'
      ? `Confidential Containers: the pods run in Kata TEE guests (runtime class {{ .Values.runtimeClassName }}, TEE {{ (default (dict) .Values.coco).tee }}).
The guest pulls and decrypts the image after attesting to the KBS named in the init data annotation;
load the Trustee bundle (trustee/set-resources.sh) into the KBS before installing.`
      : runtime === 'scone'
      ? `{{- $s := default (dict) .Values.scone }}
The SCONE runtime contacts CAS {{ $s.cas | default "(from the image)" }}{{ with $s.configID }} for policy {{ . }}{{ end }};
{{- if $s.las }} LAS at {{ $s.las }}.{{ else }} LAS on each node's IP (deploy the LAS DaemonSet first).{{ end }}`
      : `{{- $g := default (dict) .Values.gramine }}
Gramine loader: {{ $g.loader }}{{ if eq (toString $g.loader) "direct" }} (WARNING: no SGX enclave, nothing is protected){{ end }}.`;
  return `{{- $fullname := include "${chart}.fullname" . -}}
{{ .Chart.Name }} is installed as release {{ .Release.Name }} in namespace {{ .Release.Namespace }}.

Workload: {{ .Values.workloadType }} {{ $fullname }}
  kubectl get pods --namespace {{ .Release.Namespace }} -l app.kubernetes.io/instance={{ .Release.Name }}
{{- with .Values.service }}{{ if .enabled }}

Service {{ $fullname }} ({{ .type }}), port {{ .port }}:
  kubectl port-forward --namespace {{ $.Release.Namespace }} service/{{ $fullname }} {{ .port }}:{{ .port }}
{{- end }}{{ end }}

${runtime === 'coco' ? '' : `SGX device mode: {{ .Values.useSGXDevPlugin }}
{{- if eq (toString .Values.useSGXDevPlugin) "disabled" }}
WARNING: the SGX devices are mounted from the host into a privileged container. Use this for
development only; install an SGX device plugin for production.
{{- end }}
`}${runtimeNote}
`;
}
