{{/* The labels of every object, and the selector of the Deployment, Services and PDB. */}}
{{- define "sluice.labels" -}}
app.kubernetes.io/name: sluice
app.kubernetes.io/part-of: sluice
{{- end -}}

{{/* The tenants ConfigMap carries a hash of its content: an edit rolls the pods. */}}
{{- define "sluice.tenantsName" -}}
sluice-tenants-{{ .Files.Get "files/tenants.yaml" | sha256sum | trunc 10 }}
{{- end -}}
