"""Labels every Kubernetes object of the platform shares."""

from __future__ import annotations

# Recommended labels: cost reports, dashboards and the policy pack select by them.
PLATFORM_LABELS = {"app.kubernetes.io/part-of": "agent-platform",
                   "app.kubernetes.io/managed-by": "pulumi"}
# Pod Security Admission at its strictest level, enforced and reported.
PSA_RESTRICTED = {f"pod-security.kubernetes.io/{mode}": "restricted"
                  for mode in ("enforce", "audit", "warn")}
# Namespaces whose pods may reach the in-cluster data stores carry this label (the service's does).
DATA_ACCESS_LABEL = "agent-platform/data-access"
# On pod templates, the IAM role the pods get through EKS Pod Identity: Pod Identity hands a pod
# its credentials when the pod is created, so a new or changed role must roll the pods.
AWS_ROLE_ANNOTATION = "agent-platform.io/aws-role"
# The node pool a node belongs to: `general` (the managed node group), or Karpenter's `api` and
# `workers`, which the service's pods select when Karpenter runs the nodes.
NODE_POOL_LABEL = "agent-platform/node-pool"
