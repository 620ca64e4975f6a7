"""What dev and prod deploy on AWS, checked on the resources the real program registers."""

from __future__ import annotations

import inspect
import json
from typing import Any

import pulumi_aws
import pytest
from test_edge import DOMAIN

from aws_rules import UNTAGGABLE
from components.aws.cluster_addons import CLUSTER_AUTOSCALER_CHART, KEDA_CHART
from components.aws.load_balancer_controller import ALB_CONTROLLER_CHART
from harness import Rendered, Resource, render


def private_subnet_ids(stack: Rendered) -> set[str]:
    return {f"{r.name}-id" for r in stack.of_type("aws:ec2/subnet:Subnet")
            if "-private-" in r.name}


@pytest.fixture(params=["dev", "prod"])
def aws(request: pytest.FixtureRequest, stacks: dict[str, Rendered]) -> Rendered:
    return stacks[request.param]


def test_zones_exclude_opt_in_local_zones(aws: Rendered) -> None:
    (args,) = [a for token, a in aws.invokes if token.endswith("getAvailabilityZones")]
    assert {"name": "opt-in-status", "values": ["opt-in-not-required"]} in args["filters"]


def test_vpc_has_public_and_private_subnets_in_three_zones(aws: Rendered) -> None:
    subnets = aws.of_type("aws:ec2/subnet:Subnet")
    private = [s for s in subnets if s.inputs["tags"].get("kubernetes.io/role/internal-elb")]
    public = [s for s in subnets if s.inputs["tags"].get("kubernetes.io/role/elb")]
    assert len({s.inputs["availabilityZone"] for s in private}) == 3, aws.stack
    assert len({s.inputs["availabilityZone"] for s in public}) == 3, aws.stack
    for subnet in subnets:
        assert subnet.inputs.get("mapPublicIpOnLaunch") is not True, subnet.urn
    endpoint = aws.one("aws:ec2/vpcEndpoint:VpcEndpoint")
    assert endpoint.inputs["vpcEndpointType"] == "Gateway"
    assert endpoint.inputs["serviceName"].endswith(".s3")
    assert len(endpoint.inputs["routeTableIds"]) == 3


@pytest.mark.parametrize(("stack", "nat_count"), [("dev", 1), ("prod", 3)])
def test_nat_gateways_follow_the_stack_setting(stacks: dict[str, Rendered], stack: str,
                                               nat_count: int) -> None:
    rendered = stacks[stack]
    nats = rendered.of_type("aws:ec2/natGateway:NatGateway")
    assert len(nats) == nat_count
    # Every private route table still reaches a NAT gateway.
    nat_ids = {f"{n.name}-id" for n in nats}
    private_tables = [t for t in rendered.of_type("aws:ec2/routeTable:RouteTable")
                      if "private" in t.name]
    assert len(private_tables) == 3
    for table in private_tables:
        assert table.inputs["routes"][0]["natGatewayId"] in nat_ids, table.urn


def test_default_security_group_is_emptied(aws: Rendered) -> None:
    default_sg = aws.one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert not default_sg.inputs.get("ingress") and not default_sg.inputs.get("egress")


def test_no_security_group_opens_anything_but_web_ports_to_the_world(aws: Rendered) -> None:
    for sg in aws.of_type("aws:ec2/securityGroup:SecurityGroup"):
        for rule in sg.inputs.get("ingress", []):
            if "0.0.0.0/0" in rule.get("cidrBlocks", []) or "::/0" in rule.get(
                    "ipv6CidrBlocks", []):
                assert (rule["fromPort"], rule["toPort"]) in {(80, 80), (443, 443)}, sg.urn


@pytest.mark.parametrize(("type_token", "port"), [
    ("aws:ec2/securityGroup:SecurityGroup", 5432), ("aws:ec2/securityGroup:SecurityGroup", 6379)])
def test_data_stores_admit_only_the_cluster(aws: Rendered, type_token: str, port: int) -> None:
    groups = [sg for sg in aws.of_type(type_token)
              if any(r["fromPort"] == port for r in sg.inputs.get("ingress", []))]
    assert len(groups) == 1, aws.stack
    (rule,) = groups[0].inputs["ingress"]
    assert rule["toPort"] == port and rule["protocol"] == "tcp"
    assert rule["securityGroups"] == ["sg-cluster0123456789"], groups[0].urn
    assert not rule.get("cidrBlocks"), groups[0].urn


def test_data_stores_live_in_private_subnets(aws: Rendered) -> None:
    private = private_subnet_ids(aws)
    for type_token in ("aws:rds/subnetGroup:SubnetGroup",
                       "aws:elasticache/subnetGroup:SubnetGroup"):
        group = aws.one(type_token)
        assert set(group.inputs["subnetIds"]) == private, group.urn
    assert aws.one("aws:rds/instance:Instance").inputs["publiclyAccessible"] is False


def test_postgres_is_encrypted_tls_only_and_backed_up(aws: Rendered) -> None:
    db = aws.one("aws:rds/instance:Instance").inputs
    assert db["storageEncrypted"] is True
    assert db["storageType"] == "gp3"
    assert db["maxAllocatedStorage"] > db["allocatedStorage"]
    assert db["backupRetentionPeriod"] >= 7
    assert db["engine"] == "postgres"
    params = aws.one("aws:rds/parameterGroup:ParameterGroup").inputs
    assert {"name": "rds.force_ssl", "value": "1"} in [
        {"name": p["name"], "value": p["value"]} for p in params["parameters"]]
    assert params["family"] == "postgres17"
    password = aws.named("database-password")
    assert db["password"] == "p" * password.inputs["length"]
    assert "password" in aws.named("database-postgres").secret_paths


def test_prod_postgres_is_highly_available_and_protected(stacks: dict[str, Rendered]) -> None:
    db = stacks["prod"].one("aws:rds/instance:Instance").inputs
    assert db["multiAz"] is True
    assert db["deletionProtection"] is True
    assert db["backupRetentionPeriod"] >= 14
    assert db["skipFinalSnapshot"] is False and db["finalSnapshotIdentifier"]
    assert db["performanceInsightsEnabled"] is True


def test_dev_postgres_is_the_cheap_variant(stacks: dict[str, Rendered]) -> None:
    db = stacks["dev"].one("aws:rds/instance:Instance").inputs
    assert db["instanceClass"] == "db.t4g.micro"
    assert db["multiAz"] is False and db["deletionProtection"] is False
    assert db["skipFinalSnapshot"] is True
    assert db["backupRetentionPeriod"] == 7


def test_cache_is_encrypted_with_auth(aws: Rendered) -> None:
    cache = aws.one("aws:elasticache/replicationGroup:ReplicationGroup").inputs
    assert cache["atRestEncryptionEnabled"] is True
    assert cache["transitEncryptionEnabled"] is True
    assert cache["authToken"] and len(cache["authToken"]) >= 32
    assert cache["engine"] == "valkey"


def test_prod_cache_fails_over_across_zones(stacks: dict[str, Rendered]) -> None:
    prod = stacks["prod"].one("aws:elasticache/replicationGroup:ReplicationGroup").inputs
    assert prod["numCacheClusters"] >= 2
    assert prod["automaticFailoverEnabled"] is True and prod["multiAzEnabled"] is True
    assert prod["snapshotRetentionLimit"] >= 1
    dev = stacks["dev"].one("aws:elasticache/replicationGroup:ReplicationGroup").inputs
    assert dev["numCacheClusters"] == 1 and dev["automaticFailoverEnabled"] is False


def test_eks_logs_encrypts_and_keeps_its_endpoint_private(aws: Rendered) -> None:
    eks = aws.one("aws:eks/cluster:Cluster").inputs
    assert {"api", "audit", "authenticator"} <= set(eks["enabledClusterLogTypes"])
    assert eks["encryptionConfig"]["resources"] == ["secrets"]
    assert eks["encryptionConfig"]["provider"]["keyArn"]
    assert eks["accessConfig"]["authenticationMode"] == "API"
    assert eks["vpcConfig"]["endpointPrivateAccess"] is True
    assert set(eks["vpcConfig"]["subnetIds"]) == private_subnet_ids(aws)
    assert eks["upgradePolicy"]["supportType"] == "STANDARD"
    key = aws.named("cluster-secrets-key", "aws:kms/key:Key").inputs
    assert key["enableKeyRotation"] is True
    logs = aws.one("aws:cloudwatch/logGroup:LogGroup").inputs
    assert logs["name"] == f"/aws/eks/{eks['name']}/cluster" and logs["retentionInDays"] >= 30


def test_prod_eks_endpoint_is_private(stacks: dict[str, Rendered]) -> None:
    vpc_config = stacks["prod"].one("aws:eks/cluster:Cluster").inputs["vpcConfig"]
    assert vpc_config["endpointPublicAccess"] is False


def test_public_prod_endpoint_is_limited_to_the_allow_list(render_with: Any) -> None:
    rendered = render_with("prod", {"endpointPublicAccess": True,
                                    "publicAccessCidrs": ["203.0.113.0/24"]})
    vpc_config = rendered.one("aws:eks/cluster:Cluster").inputs["vpcConfig"]
    assert vpc_config["endpointPublicAccess"] is True
    assert vpc_config["publicAccessCidrs"] == ["203.0.113.0/24"]


def test_nodes_are_private_hardened_and_spread(aws: Rendered) -> None:
    group = aws.one("aws:eks/nodeGroup:NodeGroup").inputs
    assert set(group["subnetIds"]) == private_subnet_ids(aws)
    scaling = group["scalingConfig"]
    assert 1 <= scaling["minSize"] <= scaling["desiredSize"] <= scaling["maxSize"]
    template = aws.one("aws:ec2/launchTemplate:LaunchTemplate").inputs
    assert group["nodeRepairConfig"]["enabled"] is True
    assert template["metadataOptions"]["httpTokens"] == "required"
    assert template["metadataOptions"]["httpPutResponseHopLimit"] == 1
    ebs = template["blockDeviceMappings"][0]["ebs"]
    assert ebs["encrypted"] == "true" and ebs["volumeType"] == "gp3"
    node_role_policies = {a.inputs["policyArn"].rsplit("/", 1)[-1]
                          for a in aws.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                          if a.name.startswith("cluster-node-")}
    # The CNI policy belongs to the vpc-cni service account, not to every pod on the node.
    assert "AmazonEKS_CNI_Policy" not in node_role_policies


def test_prod_keeps_a_node_per_zone_on_demand(stacks: dict[str, Rendered]) -> None:
    group = stacks["prod"].one("aws:eks/nodeGroup:NodeGroup").inputs
    assert group["scalingConfig"]["minSize"] >= 3
    assert group["capacityType"] == "ON_DEMAND"
    assert stacks["dev"].one("aws:eks/nodeGroup:NodeGroup").inputs["capacityType"] == "SPOT"


def test_addons_enforce_network_policy_and_run_the_pod_identity_agent(aws: Rendered) -> None:
    addons = {a.inputs["addonName"]: a.inputs for a in aws.of_type("aws:eks/addon:Addon")}
    assert set(addons) == {"vpc-cni", "kube-proxy", "eks-pod-identity-agent", "coredns",
                           "aws-ebs-csi-driver"}
    assert json.loads(addons["vpc-cni"]["configurationValues"]) == {"enableNetworkPolicy": "true"}
    for name in ("vpc-cni", "aws-ebs-csi-driver"):
        assert addons[name]["serviceAccountRoleArn"], name
    # The agent is up before the first node joins, so no controller pod starts without it.
    group = aws.one("aws:eks/nodeGroup:NodeGroup")
    assert "cluster-eks-pod-identity-agent" in group.depends_on


def test_irsa_stays_only_for_the_cni_and_the_ebs_driver(aws: Rendered) -> None:
    expected = {
        "cluster-vpc-cni-irsa": "system:serviceaccount:kube-system:aws-node",
        "cluster-ebs-csi-irsa": "system:serviceaccount:kube-system:ebs-csi-controller-sa",
    }
    federated = {r.name for r in aws.of_type("aws:iam/role:Role")
                 if "Federated" in json.loads(r.inputs["assumeRolePolicy"])["Statement"][0][
                     "Principal"]}
    assert federated == set(expected)
    for name, subject in expected.items():
        policy = json.loads(aws.named(name).inputs["assumeRolePolicy"])
        (statement,) = policy["Statement"]
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        conditions = statement["Condition"]["StringEquals"]
        assert subject in conditions.values(), name
        assert "sts.amazonaws.com" in conditions.values(), name


def test_controllers_get_their_roles_through_pod_identity(aws: Rendered) -> None:
    associations = {(a.inputs["namespace"], a.inputs["serviceAccount"]): a
                    for a in aws.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")}
    assert set(associations) == {("kube-system", "aws-load-balancer-controller"),
                                 ("kube-system", "cluster-autoscaler"),
                                 ("argo-rollouts", "argo-rollouts")}
    # Argo Rollouts' controller is the program's own Deployment, not a chart.
    rollouts = associations.pop(("argo-rollouts", "argo-rollouts"))
    assert rollouts.name in aws.named("rollouts-controller",
                                      "kubernetes:apps/v1:Deployment").depends_on
    releases = {r.inputs["chart"]: r for r in aws.of_type("kubernetes:helm.sh/v3:Release")}
    for (_, account), association in associations.items():
        assert association.inputs["clusterName"] == aws.one("aws:eks/cluster:Cluster").inputs[
            "name"]
        # The harness's ARNs end with the logical name.
        role = next(r for r in aws.of_type("aws:iam/role:Role")
                    if association.inputs["roleArn"].endswith(f":{r.name}"))
        (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert statement == {"Effect": "Allow",
                             "Principal": {"Service": "pods.eks.amazonaws.com"},
                             "Action": ["sts:AssumeRole", "sts:TagSession"]}
        chart = {"aws-load-balancer-controller": "aws-load-balancer-controller",
                 "cluster-autoscaler": "cluster-autoscaler"}[account]
        release = releases[chart]
        # Its pods start after the association, and a new role rolls them.
        assert association.name in release.depends_on
        assert release.inputs["values"]["podAnnotations"] == {
            "agent-platform.io/aws-role": association.inputs["roleArn"]}
    # No IRSA annotation is left on the controllers' service accounts.
    assert "annotations" not in releases["aws-load-balancer-controller"].inputs["values"][
        "serviceAccount"]
    assert "annotations" not in releases["cluster-autoscaler"].inputs["values"]["rbac"][
        "serviceAccount"]


def test_controllers_are_pinned_helm_releases(aws: Rendered) -> None:
    releases = {r.inputs["chart"]: r.inputs for r in aws.of_type("kubernetes:helm.sh/v3:Release")}
    # The trace collector is tested with tracing (test_tracing_stack.py).
    assert set(releases) - {"opentelemetry-collector"} == {
        "aws-load-balancer-controller", "metrics-server", "cluster-autoscaler", "keda",
        "kube-prometheus-stack"}
    for chart, release in releases.items():
        assert release["version"], chart
        assert release["atomic"] is True, chart
    alb = releases["aws-load-balancer-controller"]
    assert alb["version"] == ALB_CONTROLLER_CHART[1]
    assert alb["values"]["clusterName"] == aws.one("aws:eks/cluster:Cluster").inputs["name"]
    assert alb["values"]["vpcId"] == "network-vpc-id"
    autoscaler = releases["cluster-autoscaler"]
    assert autoscaler["version"] == CLUSTER_AUTOSCALER_CHART[1]
    assert autoscaler["values"]["autoDiscovery"]["clusterName"] == alb["values"]["clusterName"]
    keda = releases["keda"]
    assert (keda["version"], keda["namespace"], keda["createNamespace"]) == (
        KEDA_CHART[1], "keda", True)


def test_keda_is_left_out_when_workers_scale_on_cpu(render_with: Any) -> None:
    rendered = render_with("dev", {"kedaEnabled": False})
    charts = {r.inputs["chart"] for r in rendered.of_type("kubernetes:helm.sh/v3:Release")}
    assert "keda" not in charts
    assert not rendered.of_type("kubernetes:keda.sh/v1alpha1:ScaledObject")


def test_default_storage_class_is_encrypted_gp3(aws: Rendered) -> None:
    storage = aws.one("kubernetes:storage.k8s.io/v1:StorageClass").inputs
    assert storage["parameters"] == {"type": "gp3", "encrypted": "true", "fsType": "ext4"}
    assert storage["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == \
        "true"


def test_ecr_scans_and_keeps_tags_immutable(aws: Rendered) -> None:
    repo = aws.one("aws:ecr/repository:Repository").inputs
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True
    lifecycle = json.loads(aws.one("aws:ecr/lifecyclePolicy:LifecyclePolicy").inputs["policy"])
    assert lifecycle["rules"][0]["selection"]["countType"] == "imageCountMoreThan"


def test_image_is_built_for_the_registry_and_pinned_by_digest(aws: Rendered) -> None:
    image = aws.one("docker:index/image:Image").inputs
    repo_url = f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/agent-platform-{aws.stack}/" \
               "agent-service"
    assert image["imageName"].startswith(f"{repo_url}:src-")
    assert image["build"]["platform"] == "linux/amd64"
    assert image["buildOnPreview"] is False and image["skipPush"] is False
    assert image["registry"]["server"].endswith(".amazonaws.com")
    assert aws.outputs["image_ref"].startswith(f"{repo_url}@sha256:")


def test_every_taggable_aws_resource_carries_the_required_tags(aws: Rendered) -> None:
    required = {"Project", "Stack", "Environment", "Owner", "CostCenter", "ManagedBy"}
    for resource in aws.resources:
        if not resource.type.startswith("aws:") or resource.type in UNTAGGABLE:
            continue
        tags = resource.inputs.get("tags") or {}
        assert required <= set(tags), f"{resource.urn} lacks {required - set(tags)}"
        assert tags["Environment"] == aws.stack, resource.urn


def test_the_untaggable_list_is_what_the_provider_says() -> None:
    """UNTAGGABLE (policies/aws_rules.py) against pulumi-aws itself, for every AWS type any
    stack variant creates: a type is on the list exactly when its resource takes no `tags`."""
    variants = [render(stack, overrides) for stack, overrides in (
        ("dev", {}), ("prod", {}),
        ("prod", {**DOMAIN, "serviceAccountRoleArn": "arn:aws:iam::123456789012:role/agent",
                  "backupCopyRegion": "eu-central-1", "backupAlertEmail": "ops@example.com",
                  "nodeAutoscaler": "karpenter"}))]
    types = {r.type for v in variants for r in v.resources if r.type.startswith("aws:")}
    for token in types:
        module, _, name = token.removeprefix("aws:").partition(":")
        cls = getattr(getattr(pulumi_aws, module.split("/")[0]), name)
        takes_tags = "tags" in inspect.signature(cls._internal_init).parameters
        assert takes_tags == (token not in UNTAGGABLE), token


def test_kubeconfig_uses_aws_cli_tokens_and_is_secret(aws: Rendered) -> None:
    assert "kubeconfig" in aws.secret_outputs
    kubeconfig = json.loads(aws.outputs["kubeconfig"])
    (user,) = kubeconfig["users"]
    assert user["user"]["exec"]["command"] == "aws"
    assert user["user"]["exec"]["args"][:2] == ["eks", "get-token"]
    # The cluster's provider, and the one that applies the load balancer controller's CRDs.
    for name in ("eks", "eks-crds"):
        provider: Resource = aws.named(name, "pulumi:providers:kubernetes")
        assert json.loads(provider.inputs["kubeconfig"]) == kubeconfig
        assert "kubeconfig" in provider.secret_paths


def test_connection_urls_are_secret_outputs(aws: Rendered) -> None:
    assert {"database_url", "redis_url"} <= aws.secret_outputs
    assert aws.outputs["database_url"].endswith("?sslmode=require")
    assert aws.outputs["redis_url"].startswith("rediss://")
    plain = {k: v for k, v in aws.outputs.items() if k not in aws.secret_outputs}
    assert not any("ppppp" in str(v) for v in plain.values())
