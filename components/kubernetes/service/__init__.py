"""The agent service on Kubernetes: `AgentService` and what it is built from."""

from components.kubernetes.service.component import AgentService
from components.kubernetes.service.context import (
    API_PORT,
    QUEUED_LIST,
    WORKER_METRICS_PORT,
    AgentServiceArgs,
)
from components.kubernetes.service.workloads import API_GRACE_SECONDS

__all__ = ["API_GRACE_SECONDS", "API_PORT", "QUEUED_LIST", "WORKER_METRICS_PORT", "AgentService",
           "AgentServiceArgs"]
