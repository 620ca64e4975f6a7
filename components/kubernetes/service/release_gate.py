"""`pulumi up` waits for a canary release to finish, and fails when it is aborted.

Pulumi cannot await a Rollout by itself: its `pulumi.com/waitFor` reads `status.observedGeneration`
as an integer, Argo writes it as a string, so a check right after an update would read the
previous release's "Healthy". Argo's own CLI does the generation check; a Job runs
`kubectl argo rollouts status` on both Rollouts after the Deployments changed, with the CLI of
the controller's release. Its pod template names the Deployments' generations, so every change of
either runs a new Job (auto-named: created before the old one is deleted) and a `pulumi up` that
changes neither runs none. The Job succeeds when both Rollouts are Healthy; an aborted canary
fails it, and so the `pulumi up`, with Argo's verdict (the failed check) in its pod's log and
termination message. An inconclusive step leaves the Rollout paused for a person: the Job times
out after the whole release's time.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.kubernetes.hardening import restricted_container, restricted_pod
from components.kubernetes.service.context import NAME, ServiceContext
from components.kubernetes.service.pods import APP_UID

ROLLOUTS_CLI_IMAGE = "quay.io/argoproj/kubectl-argo-rollouts:v1.10.2"
GATE = "rollout-gate"
# Beyond the steps' analyses: new pods becoming ready at each weight, then full promotion.
STEP_MARGIN_MINUTES = 5
PROMOTION_MINUTES = 10


def release_minutes(steps: int, step_minutes: int) -> int:
    """How long a whole release may take before `pulumi up` gives up on it."""
    return steps * (step_minutes + STEP_MARGIN_MINUTES) + PROMOTION_MINUTES


def release_gate(ctx: ServiceContext, deployments: list[k8s.apps.v1.Deployment],
                 rollouts: list[pulumi.Resource]) -> k8s.batch.v1.Job:
    d = ctx.delivery
    minutes = release_minutes(len(d.steps), d.step_minutes)
    account = k8s.core.v1.ServiceAccount(
        f"{ctx.name}-{GATE}", metadata=ctx.metadata(GATE, name=f"{NAME}-{GATE}"),
        opts=ctx.child())
    # Read-only, in this namespace: what the CLI's status view watches.
    role = k8s.rbac.v1.Role(
        f"{ctx.name}-{GATE}", metadata=ctx.metadata(GATE, name=f"{NAME}-{GATE}"),
        rules=[k8s.rbac.v1.PolicyRuleArgs(
                   api_groups=["argoproj.io"],
                   resources=["rollouts", "analysisruns", "experiments"],
                   verbs=["get", "list", "watch"]),
               k8s.rbac.v1.PolicyRuleArgs(api_groups=["apps"], resources=["replicasets"],
                                          verbs=["get", "list", "watch"]),
               k8s.rbac.v1.PolicyRuleArgs(api_groups=[""], resources=["pods"],
                                          verbs=["get", "list", "watch"])],
        opts=ctx.child())
    binding = k8s.rbac.v1.RoleBinding(
        f"{ctx.name}-{GATE}", metadata=ctx.metadata(GATE, name=f"{NAME}-{GATE}"),
        role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role",
                                         name=role.metadata.name),
        subjects=[k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=account.metadata.name,
                                          namespace=ctx.settings.namespace)],
        opts=ctx.child())
    release = pulumi.Output.all(*[dep.metadata.generation for dep in deployments]).apply(
        lambda generations: ",".join(str(g) for g in generations))

    def wait_for(component: str) -> k8s.core.v1.ContainerArgs:
        return k8s.core.v1.ContainerArgs(
            name=component, image=ROLLOUTS_CLI_IMAGE, image_pull_policy="IfNotPresent",
            args=["status", f"{NAME}-{component}", "--namespace", ctx.settings.namespace,
                  "--timeout", f"{minutes}m"],
            termination_message_policy="FallbackToLogsOnError",
            # The CLI's client caches API discovery under $HOME; the root filesystem is
            # read-only.
            env=[k8s.core.v1.EnvVarArgs(name="HOME", value="/tmp")],
            volume_mounts=[k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp")],
            resources=k8s.core.v1.ResourceRequirementsArgs(
                requests={"cpu": "10m", "memory": "64Mi"}, limits={"memory": "128Mi"}),
            security_context=restricted_container(run_as_non_root=True))

    return k8s.batch.v1.Job(
        f"{ctx.name}-{GATE}",
        # A gate that failed (an aborted canary) runs again on the next `pulumi up`.
        metadata=ctx.metadata(GATE, annotations={"pulumi.com/replaceUnready": "true"}),
        spec=k8s.batch.v1.JobSpecArgs(
            backoff_limit=0, active_deadline_seconds=(minutes + 1) * 60,
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    labels=ctx.labels(GATE),
                    annotations={"agent-platform.io/deployment-generations": release}),
                spec=k8s.core.v1.PodSpecArgs(
                    service_account_name=account.metadata.name,
                    restart_policy="Never",
                    security_context=restricted_pod(APP_UID, fs_group=False),
                    containers=[wait_for("api"), wait_for("worker")],
                    volumes=[k8s.core.v1.VolumeArgs(
                        name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(
                            size_limit="64Mi"))]))),
        opts=ctx.child(depends_on=[*deployments, *rollouts, binding],
                       custom_timeouts=pulumi.CustomTimeouts(
                           create=f"{minutes + 5}m", update=f"{minutes + 5}m")))
