{{/* The release's object names and labels. */}}
{{- define "smi-bridge.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "smi-bridge.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "smi-bridge.labels" -}}
{{ include "smi-bridge.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: controller
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "smi-bridge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "smi-bridge.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Read access to the SMI policy and the inventory translation needs; finalizers on SMI objects. */}}
{{- define "smi-bridge.readRules" -}}
- apiGroups: [split.smi-spec.io]
  resources: [trafficsplits]
  verbs: [get, list, watch, patch]
- apiGroups: [access.smi-spec.io]
  resources: [traffictargets]
  verbs: [get, list, watch, patch]
- apiGroups: [specs.smi-spec.io]
  resources: [httproutegroups, tcproutes, udproutes]
  verbs: [get, list, watch, patch]
- apiGroups: [""]
  resources: [services, serviceaccounts, pods]
  verbs: [get, list, watch]
- apiGroups: [apps]
  resources: [deployments, statefulsets, daemonsets]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [list, create, patch]
- apiGroups: [""]
  resources: [events]
  verbs: [list, create, patch]
{{- end -}}

{{/* Write access to the chosen mesh's kinds only (server-side apply = patch, plus create). */}}
{{- define "smi-bridge.targetRules" -}}
{{- if eq .Values.backend "istio" }}
- apiGroups: [networking.istio.io]
  resources: [virtualservices, destinationrules]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [security.istio.io]
  resources: [authorizationpolicies]
  verbs: [get, list, watch, create, patch, delete]
{{- else if eq .Values.backend "linkerd" }}
- apiGroups: [policy.linkerd.io]
  resources: [servers, httproutes, authorizationpolicies, meshtlsauthentications]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [linkerd.io]
  resources: [serviceprofiles]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes, tcproutes]
  verbs: [get, list, watch, create, patch, delete]
{{- else if eq .Values.backend "consul" }}
- apiGroups: [consul.hashicorp.com]
  resources: [servicedefaults, serviceresolvers, servicesplitters, servicerouters, serviceintentions]
  verbs: [get, list, watch, create, patch, delete]
{{- else if eq .Values.backend "gateway-api" }}
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes, tcproutes]
  verbs: [get, list, watch, create, patch, delete]
{{- else }}
{{- required "backend must be one of istio, linkerd, consul, gateway-api" nil }}
{{- end }}
{{- end -}}
