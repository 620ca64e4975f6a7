"""Kubernetes rules: hardened pods, bounded resources, probes, pinned images, no side doors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity

from common import (
    LONG_RUNNING_KINDS,
    alb_gateway_configuration,
    containers,
    kubernetes_kind,
    resource_policy,
    workload,
)

RECOMMENDED_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/part-of",
                      "app.kubernetes.io/managed-by")
_DIGEST = re.compile(r"@sha256:[a-f0-9]{64}$")
# Keys and values that look like credentials; ConfigMaps are readable far more widely than
# Secrets, are not encrypted with the cluster's KMS key and end up in logs and diffs.
_SECRET_KEY = re.compile(r"(password|passwd|secret|token|api[_-]?key|private[_-]?key|"
                         r"credential)", re.IGNORECASE)
_SECRET_VALUE = re.compile(
    r"(://[^/\s:@]+:[^@\s]+@"          # a URL with user:password@
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|\bsk-[A-Za-z0-9_-]{16,}"        # OpenAI-style keys
    r"|\bsk-ant-[A-Za-z0-9_-]{16,}"    # Anthropic keys
    r"|\bAKIA[0-9A-Z]{16}\b)")         # AWS access key ids


def _security(pod: Mapping[str, Any], container: Mapping[str, Any], field: str) -> Any:
    """A container securityContext field, falling back to the pod's where Kubernetes does."""
    value = (container.get("securityContext") or {}).get(field)
    if value is None:
        value = (pod.get("securityContext") or {}).get(field)
    return value


def run_as_non_root(args: ResourceValidationArgs, report: ReportViolation) -> None:
    found = workload(args)
    if not found:
        return
    name, pod = found
    for label, container in containers(pod):
        if _security(pod, container, "runAsNonRoot") is not True or \
                _security(pod, container, "runAsUser") == 0:
            report(f"{name}: {label} may run as root: set securityContext.runAsNonRoot=true "
                   "and a non-zero runAsUser.", None)


def no_privilege_escalation(args: ResourceValidationArgs, report: ReportViolation) -> None:
    found = workload(args)
    if not found:
        return
    name, pod = found
    for label, container in containers(pod):
        context = container.get("securityContext") or {}
        if context.get("allowPrivilegeEscalation") is not False or context.get("privileged"):
            report(f"{name}: {label} can escalate privileges: set "
                   "securityContext.allowPrivilegeEscalation=false (and never privileged).",
                   None)


def read_only_root_filesystem(args: ResourceValidationArgs, report: ReportViolation) -> None:
    found = workload(args)
    if not found:
        return
    name, pod = found
    for label, container in containers(pod):
        if (container.get("securityContext") or {}).get("readOnlyRootFilesystem") is not True:
            report(f"{name}: {label} has a writable root filesystem: set "
                   "readOnlyRootFilesystem=true and mount an emptyDir where it must write.", None)


def drop_all_capabilities(args: ResourceValidationArgs, report: ReportViolation) -> None:
    found = workload(args)
    if not found:
        return
    name, pod = found
    for label, container in containers(pod):
        capabilities = (container.get("securityContext") or {}).get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []) or capabilities.get("add"):
            report(f"{name}: {label} keeps Linux capabilities: set capabilities.drop=[\"ALL\"] "
                   "and add none.", None)


def seccomp_runtime_default(args: ResourceValidationArgs, report: ReportViolation) -> None:
    found = workload(args)
    if not found:
        return
    name, pod = found
    for label, container in containers(pod):
        profile = _security(pod, container, "seccompProfile") or {}
        if profile.get("type") not in ("RuntimeDefault", "Localhost"):
            report(f"{name}: {label} runs without a seccomp profile: set "
                   "securityContext.seccompProfile.type=RuntimeDefault.", None)


def resources_set(args: ResourceValidationArgs, report: ReportViolation) -> None:
    found = workload(args)
    if not found:
        return
    name, pod = found
    for label, container in containers(pod):
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        missing = [f"requests.{r}" for r in ("cpu", "memory") if r not in requests]
        missing += [] if "memory" in limits else ["limits.memory"]
        if missing:
            report(f"{name}: {label} lacks {', '.join(missing)}: without them the scheduler "
                   "overcommits nodes and one leak can starve its neighbours.", None)


def probes_set(args: ResourceValidationArgs, report: ReportViolation) -> None:
    kind = kubernetes_kind(args)
    found = workload(args)
    if not found or kind not in LONG_RUNNING_KINDS:
        return
    name, pod = found
    for label, container in containers(pod):
        if label.startswith("initContainer"):
            continue
        missing = [p for p in ("livenessProbe", "readinessProbe") if not container.get(p)]
        if missing:
            report(f"{name}: {label} has no {' or '.join(missing)}: Kubernetes cannot tell a "
                   "hung or unready pod from a healthy one.", None)


def image_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    found = workload(args)
    if not found:
        return
    name, pod = found
    for label, container in containers(pod):
        image = str(container.get("image") or "")
        if _DIGEST.search(image):
            continue
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        if not tag or tag == "latest":
            report(f"{name}: {label} image {image!r} is not pinned: use a digest "
                   "(repo@sha256:...) or an immutable version tag, never latest.", None)


def no_load_balancer_services(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if kubernetes_kind(args) == "Service" and (args.props.get("spec") or {}).get("type") == \
            "LoadBalancer":
        report("Services of type LoadBalancer open a load balancer outside the Ingress and its "
               "TLS and WAF: expose the service through the Ingress instead.", None)


def no_host_access(args: ResourceValidationArgs, report: ReportViolation) -> None:
    found = workload(args)
    if not found:
        return
    name, pod = found
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            report(f"{name}: {field} shares the node's namespaces: remove it.", None)
    for volume in pod.get("volumes") or []:
        if volume.get("hostPath"):
            report(f"{name}: volume {volume.get('name')!r} mounts a host path: use an emptyDir "
                   "or a PersistentVolumeClaim.", None)
    for label, container in containers(pod):
        if any(port.get("hostPort") for port in container.get("ports") or []):
            report(f"{name}: {label} binds a host port: use a Service.", None)


def no_secrets_in_config_maps(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if kubernetes_kind(args) != "ConfigMap":
        return
    for key, value in (args.props.get("data") or {}).items():
        if _SECRET_KEY.search(key) or _SECRET_VALUE.search(str(value)):
            report(f"ConfigMap key {key!r} looks like a credential: move it to a Secret (and "
                   "reference it with secretKeyRef).", None)


def recommended_labels(args: ResourceValidationArgs, report: ReportViolation) -> None:
    found = workload(args)
    if not found:
        return
    name, _ = found
    labels = (args.props.get("metadata") or {}).get("labels") or {}
    missing = [label for label in RECOMMENDED_LABELS if label not in labels]
    if missing:
        report(f"{name} lacks the labels {', '.join(missing)}: dashboards, cost reports and "
               "policies select workloads by them.", None)


def edge_terminates_tls(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not args.get_config().get("required", True):
        return
    kind = kubernetes_kind(args)
    spec = args.props.get("spec") or {}
    if kind == "Ingress":
        annotations = (args.props.get("metadata") or {}).get("annotations") or {}
        if spec.get("ingressClassName") == "alb":
            secured = bool(annotations.get("alb.ingress.kubernetes.io/certificate-arn"))
        else:
            secured = bool(spec.get("tls"))
        if not secured:
            report("This Ingress serves without TLS: set domainName (the program makes the "
                   "certificate) or ingressCertificateArn on an ALB, ingressTlsSecret "
                   "otherwise.", None)
    elif kind == "Gateway":
        # An ALB Gateway's certificate is in the LoadBalancerConfiguration it names (the
        # controller ignores certificateRefs), which is checked on its own, below.
        alb = alb_gateway_configuration(args.props) is not None
        if not any(listener.get("protocol") == "HTTPS" and
                   (alb or (listener.get("tls") or {}).get("certificateRefs"))
                   for listener in spec.get("listeners") or []):
            report("This Gateway has no HTTPS listener with a certificate: set domainName or "
                   "ingressCertificateArn (ALB), ingressTlsSecret otherwise.", None)
    elif kind == "LoadBalancerConfiguration":
        if not any(listener.get("protocolPort") == "HTTPS:443"
                   and listener.get("defaultCertificate")
                   for listener in spec.get("listenerConfigurations") or []):
            report("This ALB Gateway configuration has no certificate for HTTPS:443: set "
                   "domainName (the program makes the certificate) or ingressCertificateArn.",
                   None)


def node_pools_have_limits(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if kubernetes_kind(args) != "NodePool":
        return
    limits = (args.props.get("spec") or {}).get("limits") or {}
    if not limits.get("cpu"):
        report("This Karpenter NodePool has no CPU limit: a scheduling loop or a flood of "
               "pending pods could launch nodes without end. Set spec.limits.cpu "
               "(apiNodePoolCpuLimit, workerNodePoolCpuLimit).", None)


HIGH, CRITICAL, MEDIUM, LOW = Severity.HIGH, Severity.CRITICAL, Severity.MEDIUM, Severity.LOW

KUBERNETES_POLICIES = [
    resource_policy("k8s-run-as-non-root", "Containers run as a non-root user.", run_as_non_root,
                    severity=HIGH, remediation="Set runAsNonRoot=true and a non-zero runAsUser."),
    resource_policy("k8s-no-privilege-escalation", "Containers cannot gain privileges.",
                    no_privilege_escalation, severity=HIGH,
                    remediation="Set allowPrivilegeEscalation=false."),
    resource_policy("k8s-read-only-root-filesystem", "Containers have a read-only root.",
                    read_only_root_filesystem, severity=MEDIUM,
                    remediation="Set readOnlyRootFilesystem=true; mount emptyDirs to write."),
    resource_policy("k8s-drop-all-capabilities", "Containers drop every Linux capability.",
                    drop_all_capabilities, severity=MEDIUM,
                    remediation="Set capabilities.drop=[ALL]."),
    resource_policy("k8s-seccomp-runtime-default", "Containers run under a seccomp profile.",
                    seccomp_runtime_default, severity=MEDIUM,
                    remediation="Set seccompProfile.type=RuntimeDefault."),
    resource_policy("k8s-resources-set",
                    "Containers request CPU and memory and limit memory.", resources_set,
                    severity=MEDIUM, remediation="Set resources.requests and limits.memory."),
    resource_policy("k8s-probes-set", "Long-running containers have liveness and readiness "
                    "probes.", probes_set, severity=MEDIUM,
                    remediation="Add livenessProbe and readinessProbe."),
    resource_policy("k8s-image-pinned", "Images are pinned by digest or a version tag.",
                    image_pinned, severity=HIGH,
                    remediation="Reference images by digest or immutable tag."),
    resource_policy("k8s-no-load-balancer-services",
                    "Traffic enters through the Ingress, not LoadBalancer Services.",
                    no_load_balancer_services, severity=HIGH,
                    remediation="Use a ClusterIP Service behind the Ingress."),
    resource_policy("k8s-no-host-access",
                    "Pods use no host network, PID, IPC, ports or paths.", no_host_access,
                    severity=CRITICAL, remediation="Remove host namespaces, ports and paths."),
    resource_policy("k8s-no-secrets-in-configmaps",
                    "ConfigMaps hold no credentials.", no_secrets_in_config_maps,
                    severity=CRITICAL, remediation="Move credentials to a Secret."),
    resource_policy("k8s-recommended-labels",
                    "Workloads carry the app.kubernetes.io labels.", recommended_labels,
                    severity=LOW, remediation="Add app.kubernetes.io/name, part-of, managed-by."),
    resource_policy("karpenter-node-pools-have-limits",
                    "Karpenter NodePools cap the CPU they may launch.", node_pools_have_limits,
                    severity=HIGH, remediation="Set spec.limits.cpu on the NodePool."),
    resource_policy("edge-terminates-tls",
                    "Ingresses and Gateways (and an ALB Gateway's LoadBalancerConfiguration) "
                    "terminate TLS with a managed or given certificate.",
                    edge_terminates_tls, severity=HIGH,
                    remediation="domainName, ingressCertificateArn or ingressTlsSecret.",
                    config={"required": {"type": "boolean", "default": True}}),
]
