"""Node autoscaling settings: which autoscaler, and Karpenter's node pools."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from components.config.reader import ConfigReader

NodeAutoscaler = Literal["cluster-autoscaler", "karpenter"]
AUTOSCALERS: tuple[NodeAutoscaler, ...] = ("cluster-autoscaler", "karpenter")


@dataclass(frozen=True)
class NodeAutoscalingSettings:
    autoscaler: NodeAutoscaler
    api_cpu_limit: int
    """Karpenter: most vCPUs the API node pool may hold."""
    worker_cpu_limit: int
    """Karpenter: most vCPUs the worker node pool may hold."""
    worker_spot: bool
    """Karpenter: the worker pool may use spot capacity (on-demand when none)."""

    @property
    def karpenter(self) -> bool:
        return self.autoscaler == "karpenter"


def read_node_autoscaling(r: ConfigReader) -> NodeAutoscalingSettings:
    return NodeAutoscalingSettings(
        autoscaler=r.choice("nodeAutoscaler", AUTOSCALERS),
        api_cpu_limit=r.integer("apiNodePoolCpuLimit", 2, 10_000),
        worker_cpu_limit=r.integer("workerNodePoolCpuLimit", 2, 10_000),
        worker_spot=r.boolean("workerNodePoolSpot"))
