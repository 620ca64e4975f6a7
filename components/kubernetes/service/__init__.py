"""The agent service on Kubernetes: `AgentService` and what it is built from."""

from components.kubernetes.service.component import AgentService
from components.kubernetes.service.context import (
    API_PORT,
    NAME,
    QUEUED_LIST,
    WORKER_METRICS_PORT,
    AgentServiceArgs,
)
from components.kubernetes.service.workloads import API_GRACE_SECONDS

SERVICE_ACCOUNT = NAME
"""The service account every pod of the service runs as."""

__all__ = ["API_GRACE_SECONDS", "API_PORT", "QUEUED_LIST", "SERVICE_ACCOUNT", "WORKER_METRICS_PORT",
           "AgentService", "AgentServiceArgs"]
