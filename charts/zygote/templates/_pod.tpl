{{/* What the installer and the uninstall hook pods share: host mounts, security, placement. */}}

{{- define "zygote.hostVolumes" -}}
# The host's root: the installer works on <host-root>/<path> (--host-root /host).
- name: host-root
  hostPath:
    path: /
    type: Directory
# The directories it changes, named one by one so a node that lacks
# containerd's shows a clear mount error, and zygote's own are created.
- name: containerd-config
  hostPath:
    path: {{ dir .Values.installer.containerdConfig }}
    type: Directory
- name: containerd-run
  hostPath:
    path: {{ .Values.installer.containerdRunDir }}
    type: Directory
- name: install-dir
  hostPath:
    path: {{ .Values.installer.installDir }}
    type: DirectoryOrCreate
- name: zygote-config-dir
  hostPath:
    path: {{ .Values.installer.zygoteConfigDir }}
    type: DirectoryOrCreate
{{- end -}}

{{- define "zygote.hostMounts" -}}
- name: host-root
  mountPath: /host
  mountPropagation: HostToContainer
- name: containerd-config
  mountPath: /host{{ dir .Values.installer.containerdConfig }}
- name: containerd-run
  mountPath: /host{{ .Values.installer.containerdRunDir }}
  mountPropagation: HostToContainer
- name: install-dir
  mountPath: /host{{ .Values.installer.installDir }}
- name: zygote-config-dir
  mountPath: /host{{ .Values.installer.zygoteConfigDir }}
{{- end -}}

{{/* The pod's main container: nothing to do once installed but stay Running until stopped. */}}
{{- define "zygote.waitContainer" -}}
- name: wait
  image: {{ include "zygote.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command: ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"]
  resources:
    requests:
      cpu: 1m
      memory: 4Mi
    limits:
      memory: 16Mi
  securityContext:
    allowPrivilegeEscalation: false
    capabilities:
      drop: ["ALL"]
{{- end -}}

{{- define "zygote.placement" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
