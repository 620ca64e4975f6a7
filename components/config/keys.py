"""Every stack config key of the project: its type, default and what it means.

This table is the single declaration: `components.config` parses against it, and
`components.config.reference` generates `Pulumi.yaml`'s config block and docs/configuration.md
from it (`make config-docs`; a test fails when either is stale).
Defaults are the production values; cheaper settings are spelled out in `Pulumi.dev.yaml`.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.config.database_keys import DATABASE_KEYS
from components.config.delivery_keys import DELIVERY_KEYS
from components.config.key import Key, KeyType
from components.versions import DEFAULT_KUBERNETES_VERSION, KUBERNETES_VERSIONS

__all__ = ["KEYS", "KEYS_BY_NAME", "SECRET_KEYS", "SECRET_KEYS_BY_NAME", "Key", "KeyType"]


KEYS: tuple[Key, ...] = (
    # --- the stack as a whole -------------------------------------------------------------------
    Key("environment", "string",
        "Kind of stack: `local` (any local Kubernetes cluster, no AWS), `dev` or `prod` (AWS). "
        "`prod` turns on the checks that refuse insecure or non-redundant settings.", "prod"),
    Key("protectState", "boolean",
        "Protect stateful resources (databases, cache, cluster, keys, registry, data volumes) "
        "from deletion and replacement by `pulumi up` or `pulumi destroy`. Set false only to "
        "tear a stack down (docs/operations.md, \"Tearing a stack down\").", True),
    Key("owner", "string", "Value of the `Owner` tag on every AWS resource (who to call).",
        "platform-team"),
    Key("costCenter", "string", "Value of the `CostCenter` tag on every AWS resource.",
        "agent-platform"),
    # --- network --------------------------------------------------------------------------------
    Key("vpcCidr", "string", "IPv4 CIDR of the VPC; /20 or larger (it is cut into 6 subnets).",
        "10.40.0.0/16"),
    Key("availabilityZoneCount", "integer",
        "How many availability zones the VPC, nodes and data stores span (2 to 4; prod needs 3+).",
        3),
    Key("natGateways", "string",
        "`per-az` (one NAT gateway per zone, survives a zone outage) or `single` (cheaper, one "
        "zone's NAT carries all egress). prod requires `per-az`.", "per-az"),
    # --- EKS ------------------------------------------------------------------------------------
    Key("kubernetesVersion", "string",
        f"EKS Kubernetes minor: {', '.join(KUBERNETES_VERSIONS)}. Upgrade one minor at a "
        "time (docs/operations.md).", DEFAULT_KUBERNETES_VERSION),
    Key("endpointPublicAccess", "boolean",
        "Expose the EKS API endpoint publicly (limited to `publicAccessCidrs`). The private "
        "endpoint is always on.", False),
    Key("publicAccessCidrs", "array",
        "CIDRs allowed to reach a public EKS API endpoint. Required when "
        "`endpointPublicAccess` is true in prod; `0.0.0.0/0` is refused in prod.", []),
    Key("adminPrincipalArns", "array",
        "IAM role/user ARNs given cluster-admin through EKS access entries.", []),
    Key("kubeconfigRoleArn", "string",
        "IAM role that `aws eks get-token` assumes in the generated kubeconfig (optional).", ""),
    Key("clusterLogTypes", "array",
        "EKS control-plane log types sent to CloudWatch; prod needs api, audit, authenticator.",
        ["api", "audit", "authenticator", "controllerManager", "scheduler"]),
    Key("nodeInstanceTypes", "array",
        "EC2 instance types of the managed node group (several help SPOT capacity).",
        ["m7i.large"]),
    Key("nodeCapacityType", "string", "`ON_DEMAND` or `SPOT`.", "ON_DEMAND"),
    Key("nodeMinSize", "integer", "Minimum nodes (prod needs at least one per zone).", 3),
    Key("nodeDesiredSize", "integer", "Nodes at creation; the autoscaler owns it afterwards.", 3),
    Key("nodeMaxSize", "integer", "Maximum nodes the cluster autoscaler may add.", 9),
    Key("nodeDiskSizeGb", "integer", "Encrypted gp3 root volume size of each node, GiB.", 50),
    Key("nodeAutoscaler", "string",
        "`cluster-autoscaler` (scales the managed node group) or `karpenter` (node pools for "
        "the API, on-demand, and the workers, spot allowed; the node group keeps the system "
        "pods). Switching a running stack moves every service pod to new nodes (docs/"
        "operations.md).", "cluster-autoscaler"),
    Key("apiNodePoolCpuLimit", "integer",
        "karpenter: most vCPUs the API node pool may hold.", 64),
    Key("workerNodePoolCpuLimit", "integer",
        "karpenter: most vCPUs the worker node pool may hold.", 128),
    Key("workerNodePoolSpot", "boolean",
        "karpenter: the worker pool may run on spot capacity, on-demand when there is none. A "
        "spot reclaim stops the runs on that node; the reaper queues them again.", True),
    # --- Postgres and its backups (components/config/database_keys.py) -----------------------
    *DATABASE_KEYS,
    # --- Redis / Valkey -------------------------------------------------------------------------
    Key("cacheNodeType", "string", "ElastiCache node type, e.g. `cache.r7g.large`.",
        "cache.r7g.large"),
    Key("cacheEngineVersion", "string", "ElastiCache Valkey version, e.g. `8.0`.", "8.0"),
    Key("cacheNodes", "integer",
        "Nodes in the replication group (1 primary + replicas). prod requires 2+ for failover.", 2),
    Key("cacheSnapshotRetentionDays", "integer",
        "Daily snapshot retention, 0 to 35 days (0 disables). prod requires 1+.", 7),
    # --- image ----------------------------------------------------------------------------------
    Key("imagePlatform", "string", "Platform of the app image: `linux/amd64` or `linux/arm64`.",
        "linux/amd64"),
    Key("imageRetainCount", "integer", "ECR lifecycle policy keeps this many newest images.", 30),
    Key("imageRef", "string",
        "Deploy this prebuilt image (`registry/repo@sha256:...`) instead of building `app/`: "
        "images built by CI, air-gapped clusters, one digest promoted from dev to prod. prod "
        "requires a digest. Empty: the program builds the image.", ""),
    Key("localRegistry", "string",
        "local stack: registry to push the app image to (e.g. `localhost:5001`, the kind "
        "local-registry pattern). Empty: the image is only built into the local Docker engine.",
        ""),
    # --- local stack ----------------------------------------------------------------------------
    Key("kubeContext", "string",
        "local stack: kubeconfig context to deploy to. Empty: the current context.", ""),
    Key("localStorageClass", "string",
        "local stack: StorageClass for the Postgres/Valkey volumes. Empty: the cluster default.",
        ""),
    Key("localVolumeSize", "string", "local stack: size of each data volume, e.g. `5Gi`.", "5Gi"),
    Key("localBackupSchedule", "string",
        "local stack: when the in-cluster Postgres is dumped (cron, UTC). Hourly meets the "
        "1-hour recovery point.", "0 * * * *"),
    Key("localBackupKeep", "integer",
        "local stack: how many dumps to keep on the backup volume (0 turns backups off).", 48),
    Key("localBackupVolumeSize", "string", "local stack: size of the backup volume.", "10Gi"),
    Key("localPostgresImage", "string", "local stack: official Postgres image, pinned.",
        "postgres:17.6-alpine"),
    Key("localRedisImage", "string", "local stack: official Valkey image, pinned.",
        "valkey/valkey:8.1.3-alpine"),
    # --- the agent service on Kubernetes (components/kubernetes/service/) ------------------------
    Key("serviceNamespace", "string", "Namespace the agent service runs in.", "agent-service"),
    Key("apiMinReplicas", "integer",
        "Fewest API pods the HorizontalPodAutoscaler keeps (prod needs 2+).", 3),
    Key("apiMaxReplicas", "integer", "Most API pods the HorizontalPodAutoscaler may run.", 12),
    Key("apiCpuRequest", "string", "CPU request of each API pod (the HPA's 70 % is of this).",
        "500m"),
    Key("apiCpuLimit", "string", "CPU limit of each API pod.", "2"),
    Key("apiMemoryRequest", "string", "Memory request of each API pod.", "512Mi"),
    Key("apiMemoryLimit", "string", "Memory limit of each API pod (at least the request).",
        "1Gi"),
    Key("workerMinReplicas", "integer", "Fewest worker pods (prod needs 2+).", 2),
    Key("workerMaxReplicas", "integer", "Most worker pods the autoscaler may run.", 10),
    Key("workerCpuRequest", "string", "CPU request of each worker pod.", "500m"),
    Key("workerCpuLimit", "string", "CPU limit of each worker pod.", "2"),
    Key("workerMemoryRequest", "string", "Memory request of each worker pod.", "512Mi"),
    Key("workerMemoryLimit", "string", "Memory limit of each worker pod (at least the request).",
        "1Gi"),
    Key("workerConcurrency", "integer", "Research runs one worker pod executes at once.", 8),
    Key("jobTimeoutSeconds", "integer",
        "Longest a research run may take; workers get this long plus 30 s to drain on SIGTERM.",
        300),
    Key("workerDoNotDisrupt", "boolean",
        "Mark worker pods so node consolidation (Karpenter, cluster-autoscaler) does not evict "
        "them mid-run.", True),
    Key("kedaEnabled", "boolean",
        "Scale workers on the Redis queue's length with KEDA (installed on AWS stacks from its "
        "pinned chart). false: a CPU-based HPA.", True),
    Key("workerQueueTarget", "integer",
        "Queued runs per worker pod before KEDA adds another.", 20),
    Key("zoneSpreadRequired", "boolean",
        "Refuse to schedule API and worker pods unevenly across zones (true), or only prefer an "
        "even spread (false, for clusters whose nodes carry no zone label).", True),
    Key("ingressEnabled", "boolean",
        "Expose the API through an Ingress. false: reach it with `kubectl port-forward`.", False),
    Key("ingressClassName", "string",
        "IngressClass: `alb` (AWS Load Balancer Controller) on AWS; e.g. `traefik` (k3d) or "
        "`nginx` (kind) locally.", "alb"),
    Key("ingressHost", "string", "DNS name the Ingress answers to. Empty: any host.", ""),
    Key("domainName", "string",
        "AWS stacks: the API's DNS name in the Route 53 zone `hostedZoneId`. The program creates "
        "its ACM certificate (validated in DNS), an HTTPS Ingress on that host and the alias "
        "record pointing at the ALB; it turns the Ingress on and replaces ingressHost and "
        "ingressCertificateArn. Empty: none of that.", ""),
    Key("hostedZoneId", "string",
        "Route 53 hosted zone (e.g. `Z0123456789ABCDEFGHIJ`) holding domainName; the program "
        "writes only the certificate's validation record and the API's alias record in it.",
        ""),
    Key("ingressScheme", "string",
        "`internal` or `internet-facing` ALB (ALB only).", "internal"),
    Key("ingressCertificateArn", "string",
        "ACM certificate ARN for HTTPS on the ALB; HTTP then redirects to HTTPS. prod requires "
        "TLS whenever the Ingress is enabled.", ""),
    Key("ingressTlsSecret", "string",
        "TLS Secret in the service namespace for non-ALB ingress classes.", ""),
    Key("ingressControllerNamespace", "string",
        "Namespace of the in-cluster ingress controller allowed to reach the API (non-ALB "
        "classes; ALB traffic is admitted from the VPC CIDR).", "kube-system"),
    Key("edge", "string",
        "How traffic reaches the API: `ingress` (an Ingress of ingressClassName) or `gateway` "
        "(a Gateway API Gateway and HTTPRoutes of gatewayClassName, with the same host, TLS, "
        "health checks and timeouts: on AWS an ALB of the load balancer controller, with "
        "ingressClassName alb). ingressEnabled turns either on.", "ingress"),
    Key("gatewayClassName", "string",
        "With edge gateway: on AWS (ingressClassName alb) the name of the ALB GatewayClass the "
        "program creates, e.g. `alb`; locally the GatewayClass of the cluster's Gateway API "
        "implementation (Envoy Gateway `eg`, Traefik `traefik`, Istio `istio`, ...), whose "
        "proxies' namespace is ingressControllerNamespace.", ""),
    *DELIVERY_KEYS,
    Key("serviceAccountRoleArn", "string",
        "IAM role for the service's pods through EKS Pod Identity (AWS stacks; optional, the "
        "service needs none today). The role must trust `pods.eks.amazonaws.com`.",
        ""),
    Key("llmProviders", "array",
        "LLM providers in failover order: `openai`, `anthropic`, `offline` (the deterministic "
        "offline provider, no network). Each of openai/anthropic needs its secret API key.",
        ["offline"]),
    Key("llmEgressCidrs", "array",
        "Where workers may open TCP 443 for LLM APIs. `0.0.0.0/0` means the internet but no "
        "private ranges.", ["0.0.0.0/0"]),
    Key("openaiBaseUrl", "string",
        "OpenAI-compatible endpoint (vLLM, Ollama, LiteLLM). Empty: api.openai.com.", ""),
    Key("openaiModel", "string", "Model for the openai provider.", "gpt-4.1-mini"),
    Key("anthropicModel", "string", "Model for the anthropic provider.", "claude-haiku-4-5"),
    Key("expectedRunsPerDay", "integer",
        "Research runs a day you expect: prices the LLM spend in `make cost` with the first "
        "provider's model (app/agent_service/llm/prices.json).", 20000),
    Key("rateLimit", "string", "Requests per API key, e.g. `120/minute`.", "120/minute"),
    Key("logLevel", "string", "Service log level: DEBUG, INFO, WARNING or ERROR.", "INFO"),
    # --- monitoring (components/observability/monitoring.py) ------------------------------------
    Key("monitoringEnabled", "boolean",
        "Install kube-prometheus-stack with the service's monitors, alert rules and dashboards.",
        True),
    Key("monitoringReplicas", "integer",
        "Replicas of Prometheus and of Alertmanager (2 survive a node loss).", 2),
    Key("prometheusRetention", "string", "How long Prometheus keeps samples, e.g. `15d`.", "15d"),
    Key("prometheusStorageSize", "string",
        "Persistent volume per Prometheus replica (default StorageClass; gp3 on AWS). Empty: "
        "no volume, data is lost with the pod.", "50Gi"),
    Key("grafanaIngressHost", "string",
        "Expose Grafana (login required) through an Ingress on this host, with the service's "
        "ingress class and TLS settings. Empty: reach it with `kubectl port-forward`.", ""),
    Key("grafanaDomainName", "string",
        "AWS: Grafana's own name in the hostedZoneId zone: the program makes its certificate, "
        "an HTTPS Ingress (an ALB of its own) and the DNS record. Grafana's login guards it; "
        "anonymous access stays off. Empty: reach Grafana with `kubectl port-forward`.", ""),
    Key("alertSlackChannel", "string",
        "Slack channel for alerts (with the secret alertSlackWebhookUrl).",
        "#agent-platform-alerts"),
    Key("alertEmailTo", "string", "Address alerts are e-mailed to (with alertSmtpSmarthost).", ""),
    Key("alertEmailFrom", "string", "Sender address of alert e-mails.", ""),
    Key("alertSmtpSmarthost", "string",
        "SMTP server as host:port for alert e-mails (TLS required).", ""),
    Key("alertSmtpUsername", "string", "SMTP user (password: the secret alertSmtpPassword).", ""),
    Key("sloAvailabilityTarget", "string",
        "Availability SLO of the API in percent of requests not answered 5xx, e.g. `99.9`.",
        "99.9"),
    Key("sloLatencyTarget", "string",
        "Latency SLO in percent of API requests within sloLatencyThresholdSeconds.", "99"),
    Key("sloLatencyThresholdSeconds", "string",
        "Latency SLO threshold; one of the service's histogram buckets: 0.1, 0.25, 0.5, 1, 2.5, "
        "5, 10.", "0.5"),
    Key("alertErrorRatio", "string", "5xx share of API requests over 5 minutes that pages.",
        "0.05"),
    Key("alertLatencyP95Seconds", "string", "API p95 latency that opens a ticket.", "1"),
    Key("alertLatencyP99Seconds", "string", "API p99 latency that opens a ticket.", "2.5"),
    Key("alertQueueDepth", "integer", "Queued runs that open a ticket after 10 minutes.", 100),
    Key("alertQueueAgeSeconds", "integer", "Age of the oldest queued run that pages.", 600),
    Key("alertLlmErrorRatio", "string", "Share of failing calls to one LLM provider that alerts.",
        "0.1"),
    Key("llmCostBudgetUsdPerHour", "string",
        "LLM spend per hour (USD, from agent_cost_usd_total) above which an alert fires.", "10"),
    Key("runbookBaseUrl", "string",
        "Where docs/runbooks.md is published; each alert links to its section.",
        "https://github.com/agent-platform/agent-platform/blob/main/docs/runbooks.md"),
    # --- tracing (components/observability/tracing.py) ------------------------------------------
    Key("tracingEnabled", "boolean",
        "Deploy an OpenTelemetry Collector and send the service's traces to it (needs "
        "monitoringEnabled).", True),
    Key("tracingBackend", "string",
        "`jaeger` (Jaeger v2 in the `tracing` namespace, badger storage on a volume) or `otlp` "
        "(forward to tracingOtlpEndpoint).", "jaeger"),
    Key("tracingSampleRatio", "string",
        "Share of traces kept, 0 to 1 (parent-based: a sampled request keeps its whole run).",
        "0.1"),
    Key("tracingStorageSize", "string", "Jaeger's trace volume.", "20Gi"),
    Key("tracingRetentionHours", "integer", "How long Jaeger keeps traces, hours.", 72),
    Key("tracingOtlpEndpoint", "string",
        "OTLP/HTTP endpoint traces are forwarded to (backend `otlp`), e.g. "
        "`https://tempo.example.com:4318`.", ""),
    Key("tracingOtlpAuthHeader", "string",
        "Header carrying the secret tracingOtlpAuthToken to that endpoint, e.g. "
        "`authorization` or `x-honeycomb-team`. Empty: no auth header.", ""),
)

KEYS_BY_NAME: dict[str, Key] = {key.name: key for key in KEYS}


@dataclass(frozen=True)
class SecretKey:
    """A key that must be set with `pulumi config set --secret` and has no default.

    Kept out of `Pulumi.yaml`: a declared key without a default would be required in every stack.
    """

    name: str
    description: str


SECRET_KEYS: tuple[SecretKey, ...] = (
    SecretKey("openaiApiKey", "API key of the openai provider (required when it is listed)."),
    SecretKey("anthropicApiKey",
              "API key of the anthropic provider (required when it is listed)."),
    SecretKey("alertSlackWebhookUrl", "Slack incoming-webhook URL alerts are posted to."),
    SecretKey("alertPagerdutyRoutingKey",
              "PagerDuty Events v2 routing key; critical alerts page through it."),
    SecretKey("alertSmtpPassword", "Password of alertSmtpUsername on alertSmtpSmarthost."),
    SecretKey("tracingOtlpAuthToken",
              "Value of tracingOtlpAuthHeader when traces go to an external OTLP endpoint."),
)

SECRET_KEYS_BY_NAME: dict[str, SecretKey] = {key.name: key for key in SECRET_KEYS}
