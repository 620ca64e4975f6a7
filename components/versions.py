"""The Kubernetes minors this program deploys EKS clusters at, and what must follow each.

Cluster Autoscaler supports only the Kubernetes minor it was built for, and its chart's default
image trails the chart: the image is chosen here from the cluster's minor, so raising
`kubernetesVersion` moves the autoscaler with it. Whether a minor is still in EKS standard
support is the policy pack's question (policies/eks_support_calendar.json), asked on every
preview, and a test fails 60 days before the default minor leaves it.
"""

from __future__ import annotations

# registry.k8s.io/autoscaling/cluster-autoscaler: the newest patch of each minor.
CLUSTER_AUTOSCALER_IMAGE_TAGS = {
    "1.33": "v1.33.5",
    "1.34": "v1.34.4",
    "1.35": "v1.35.1",
}
KUBERNETES_VERSIONS = tuple(CLUSTER_AUTOSCALER_IMAGE_TAGS)
DEFAULT_KUBERNETES_VERSION = "1.35"
