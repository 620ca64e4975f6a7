"""`edge: gateway` on AWS: an ALB Gateway of the AWS Load Balancer Controller 3.x, its
configuration objects, the CRDs the program applies for the controller, its IAM policy against
the release's, and what switching a running prod stack from the Ingress plans."""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import jsonschema
import pytest
import yaml
from crd_validation import crd_validator
from plan import plan, summary
from test_config import config_error

from components.aws.load_balancer_controller import (
    ALB_CONTROLLER_CHART,
    CRD_DIRECTORIES,
    CRD_ROOT,
    GATEWAY_API_VERSION,
    alb_controller_policy,
)
from harness import ROOT, Rendered, render
from policy_runner import evaluate

DOMAIN = {"domainName": "api.example.com", "hostedZoneId": "Z0123456789ABCDEFGHIJ"}
GATEWAY = {"edge": "gateway", "gatewayClassName": "alb"}
GW = "kubernetes:gateway.networking.k8s.io/v1:"
LBC = "kubernetes:gateway.k8s.aws/v1beta1:"
RELEASE = "kubernetes:helm.sh/v3:Release"
RECORD = "aws:route53/record:Record"
UPSTREAM = ROOT / "tests" / "crd_schemas" / "aws-load-balancer-controller"


@pytest.fixture(scope="module")
def prod() -> Rendered:
    return render("prod", {**DOMAIN, **GATEWAY})


def test_the_api_is_an_alb_gateway_with_the_ingress_settings(prod: Rendered) -> None:
    assert [i.name for i in prod.of_type("kubernetes:networking.k8s.io/v1:Ingress")] == []
    (gateway_class,) = prod.of_type(f"{GW}GatewayClass")
    assert gateway_class.inputs["metadata"]["name"] == "alb"
    assert gateway_class.inputs["spec"]["controllerName"] == "gateway.k8s.aws/alb"
    gateway = prod.one(f"{GW}Gateway")
    spec = gateway.inputs["spec"]
    assert spec["gatewayClassName"] == "alb"
    assert spec["infrastructure"]["parametersRef"] == {
        "group": "gateway.k8s.aws", "kind": "LoadBalancerConfiguration",
        "name": "agent-service-api"}
    # The ALB ignores certificateRefs: HTTPS has no tls block; its certificate is below.
    assert [(listener["protocol"], listener["port"], "tls" in listener)
            for listener in spec["listeners"]] == [("HTTP", 80, False), ("HTTPS", 443, False)]
    assert gateway.inputs["metadata"]["annotations"] == {
        "pulumi.com/waitFor": "condition=Programmed"}

    config = prod.one(f"{LBC}LoadBalancerConfiguration").inputs["spec"]
    certificate = prod.one("aws:acm/certificate:Certificate")
    (listener,) = config["listenerConfigurations"]
    assert listener["protocolPort"] == "HTTPS:443"
    assert listener["defaultCertificate"].endswith(f":{certificate.name}")
    assert listener["sslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert config["scheme"] == "internal"
    assert {a["key"]: a["value"] for a in config["loadBalancerAttributes"]} == {
        "idle_timeout.timeout_seconds": "300",
        "routing.http.drop_invalid_header_fields.enabled": "true"}
    assert config["tags"]["Stack"] == "prod"
    # The certificate is validated before the ALB's listener names it.
    assert "api-certificate-validation" in prod.one(
        f"{LBC}LoadBalancerConfiguration").depends_on

    target = prod.one(f"{LBC}TargetGroupConfiguration").inputs["spec"]
    assert target["targetReference"] == {"name": "agent-service-api"}
    assert target["defaultConfiguration"]["targetType"] == "ip"
    assert target["defaultConfiguration"]["healthCheckConfig"] == {
        "healthCheckPath": "/health", "matcher": {"httpCode": "200"}}

    routes = {r.name: r.inputs["spec"] for r in prod.of_type(f"{GW}HTTPRoute")}
    assert routes["agent-api-route"]["parentRefs"] == [
        {"name": "agent-service-api", "sectionName": "https"}]
    assert routes["agent-api-route"]["rules"][0]["backendRefs"] == [
        {"name": "agent-service-api", "port": 80}]
    assert routes["agent-api-redirect"]["rules"][0]["filters"][0]["requestRedirect"] == {
        "scheme": "https", "statusCode": 301}
    assert prod.outputs["api_url"] == "https://api.example.com"


def test_the_dns_record_follows_the_gateways_alb(prod: Rendered) -> None:
    alias = prod.named("api-dns-alias", RECORD)
    (target,) = alias.inputs["aliases"]
    assert target["name"] == ("internal-k8s-agent-service-agent-service-api-0123456789"
                              ".eu-west-1.elb.amazonaws.com")
    # Found by the tags the controller gives a Gateway's ALB, after the Gateway is Programmed.
    (lookup,) = [args for token, args in prod.invokes
                 if token == "aws:lb/getLoadBalancer:getLoadBalancer"]
    assert lookup["tags"] == {"elbv2.k8s.aws/cluster": "agent-platform-prod",
                              "gateway.k8s.aws.alb/stack": "agent-service/agent-service-api"}
    assert "agent-api-gateway" in alias.depends_on


def test_the_controller_is_v3_with_its_crds_applied_first(prod: Rendered) -> None:
    release = next(r for r in prod.of_type(RELEASE)
                   if r.inputs["chart"] == "aws-load-balancer-controller")
    assert release.inputs["version"] == ALB_CONTROLLER_CHART[1] == "3.2.2"
    # Helm installs crds/ once and never upgrades them: the program applies them instead.
    assert release.inputs["skipCrds"] is True
    crds = prod.named("addons-alb-controller-crds", "kubernetes:yaml/v2:ConfigGroup")
    assert "addons-alb-controller-crds" in release.depends_on
    assert crds.inputs["files"] == [
        str(p.relative_to(ROOT)) for d in CRD_DIRECTORIES for p in sorted(d.glob("*.yaml"))]
    # Deleting a CRD deletes every object of its kind, and the ALBs behind them.
    assert crds.retain_on_delete
    # Applied through the provider that adopts the CRDs the first chart install made.
    assert crds.provider == "eks-crds"
    provider = prod.named("eks-crds", "pulumi:providers:kubernetes").inputs
    assert (provider["upsertExistingObjects"], provider["enablePatchForce"]) == ("true", "true")
    assert prod.named("eks", "pulumi:providers:kubernetes").inputs.get(
        "upsertExistingObjects") is None
    # The GatewayClass waits for the controller that will accept it.
    assert "addons-aws-load-balancer-controller" in prod.one(f"{GW}GatewayClass").depends_on


def test_the_vendored_crds_are_the_pinned_releases() -> None:
    assert sorted(p.name for p in CRD_ROOT.iterdir()) == [
        f"aws-load-balancer-controller-{ALB_CONTROLLER_CHART[1]}",
        f"gateway-api-{GATEWAY_API_VERSION}"]
    kinds = set()
    for directory in CRD_DIRECTORIES:
        for path in directory.glob("*.yaml"):
            kinds |= {(d["kind"], d["metadata"]["name"])
                      for d in yaml.safe_load_all(path.read_text()) if d}
    names = {name for kind, name in kinds if kind == "CustomResourceDefinition"}
    # What the controller needs to enable ALB Gateways at start-up, and its own kinds.
    assert {"gateways.gateway.networking.k8s.io", "gatewayclasses.gateway.networking.k8s.io",
            "httproutes.gateway.networking.k8s.io", "grpcroutes.gateway.networking.k8s.io",
            "loadbalancerconfigurations.gateway.k8s.aws",
            "targetgroupconfigurations.gateway.k8s.aws",
            "targetgroupbindings.elbv2.k8s.aws", "ingressclassparams.elbv2.k8s.aws"} <= names
    (versions,) = {d["metadata"]["annotations"]["gateway.networking.k8s.io/bundle-version"]
                   for d in yaml.safe_load_all(
                       (CRD_DIRECTORIES[1] / "gateway.networking.k8s.io_gateways.yaml").read_text())
                   if d}
    assert versions == GATEWAY_API_VERSION


def _crd_validator(kind: str, version: str = "v1beta1") -> jsonschema.Draft7Validator:
    """`kind` in the CRDs the program applies (the exact ones the API server will hold)."""
    return crd_validator([p for d in CRD_DIRECTORIES for p in d.glob("*.yaml")], version, kind)


@pytest.mark.parametrize("kind", ["LoadBalancerConfiguration", "TargetGroupConfiguration"])
def test_the_alb_configurations_are_valid_for_the_pinned_controller(prod: Rendered,
                                                                    kind: str) -> None:
    validator = _crd_validator(kind)
    body = dict(prod.one(f"{LBC}{kind}").inputs)
    assert [e.message for e in validator.iter_errors(body)] == []
    spec = body["spec"]
    wrong = ({**spec, "scheme": "public"} if kind == "LoadBalancerConfiguration"
             else {**spec, "defaultConfiguration": {"targetType": "pod"}})
    assert list(validator.iter_errors({**body, "spec": wrong}))


def test_the_gateway_objects_are_valid_gateway_api(prod: Rendered) -> None:
    from test_kubernetes_schema import validate_custom

    objects = [dict(o.inputs) for o in prod.kubernetes_objects()
               if str(o.inputs.get("apiVersion", "")).startswith("gateway.networking")]
    assert sorted(o["kind"] for o in objects) == ["Gateway", "GatewayClass", "HTTPRoute",
                                                  "HTTPRoute"]
    assert [r for r in validate_custom(objects) if r["error"]] == []
    # And against the v1.5.1 CRDs the program installs.
    for obj in objects:
        errors = [e.message for e in _crd_validator(obj["kind"], "v1").iter_errors(obj)]
        assert errors == [], obj["kind"]
    gateway = next(o for o in objects if o["kind"] == "Gateway")
    assert list(_crd_validator("Gateway", "v1").iter_errors(
        {**gateway, "spec": {**gateway["spec"], "gatewayClassName": None}}))


def _actions(policy: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for statement in policy["Statement"]:
        action = statement["Action"]
        found |= {action} if isinstance(action, str) else set(action)
    return found


def test_the_controller_may_do_what_its_release_needs() -> None:
    upstream = json.loads((UPSTREAM / ALB_CONTROLLER_CHART[1] / "iam_policy.json").read_text())
    ours = _actions(alb_controller_policy())
    missing = {action for action in _actions(upstream)
               if not any(fnmatch.fnmatchcase(action, granted) for granted in ours)}
    # WAF Classic only: AWS retired it; the controller attaches WAFv2 ACLs.
    assert missing == {"waf-regional:AssociateWebACL", "waf-regional:DisassociateWebACL",
                       "waf-regional:GetWebACL", "waf-regional:GetWebACLForResource"}
    assert [p.name for p in UPSTREAM.iterdir()] == [ALB_CONTROLLER_CHART[1]]


def test_prod_gateways_must_terminate_tls(prod: Rendered) -> None:
    # The whole pack passes the ALB Gateway stack (the GatewayClass and configurations too).
    assert {rule: v for rule, v in evaluate(prod).violations.items() if v} == {}
    config = prod.one(f"{LBC}LoadBalancerConfiguration")
    bare = type(config)(config.type, config.name, {**config.inputs, "spec": {
        k: v for k, v in config.inputs["spec"].items() if k != "listenerConfigurations"}},
        urn=config.urn)
    others = [r for r in prod.resources if r is not config]
    (violation,) = evaluate(Rendered("prod", [*others, bare])).violations["edge-terminates-tls"]
    assert "no certificate for HTTPS:443" in violation.message


def test_switching_a_running_prod_stack_to_the_gateway() -> None:
    """The Gateway, its ALB and the record's new target before the Ingress (and its ALB) go:
    deletes run last, so the name never points at nothing."""
    steps = plan(render("prod", DOMAIN), render("prod", {**DOMAIN, **GATEWAY}))
    found = summary(steps)
    assert found["create"] == {
        "GatewayClass/addons-alb-gateway-class",
        "LoadBalancerConfiguration/agent-api-load-balancer",
        "TargetGroupConfiguration/agent-api-target-group", "Gateway/agent-api-gateway",
        "HTTPRoute/agent-api-route", "HTTPRoute/agent-api-redirect"}
    # The canary's stable and canary Services were for Argo's ALB routing of the Ingress:
    # behind a Gateway a canary is weighed by replicas, so the Rollout drops them in place.
    assert found["delete"] == {"Ingress/agent-api", "Service/agent-api-stable",
                               "Service/agent-api-canary"}
    assert found["update"] == {"Record/api-dns-alias", "Rollout/agent-api-rollout"}
    assert "replace" not in found


@pytest.mark.parametrize("delivery", ["canary", "bluegreen"])
def test_releases_behind_the_gateway_weigh_by_replicas(delivery: str) -> None:
    stack = render("prod", {**DOMAIN, **GATEWAY, "progressiveDelivery": delivery})
    rollout = next(r for r in stack.of_type("kubernetes:argoproj.io/v1alpha1:Rollout")
                   if r.inputs["metadata"]["name"] == "agent-service-api")
    strategy = rollout.inputs["spec"]["strategy"]
    # Argo's ALB traffic routing drives an Ingress only.
    assert "trafficRouting" not in strategy.get("canary", {})
    backend = "agent-service-api-active" if delivery == "bluegreen" else "agent-service-api"
    route = stack.named("agent-api-route", f"{GW}HTTPRoute").inputs["spec"]
    assert route["rules"][0]["backendRefs"] == [{"name": backend, "port": 80}]
    target = stack.one(f"{LBC}TargetGroupConfiguration").inputs["spec"]
    assert target["targetReference"] == {"name": backend}


@pytest.mark.parametrize(("stack", "overrides", "expected"), [
    ("prod", {**DOMAIN, "edge": "gateway"},
     "gatewayClassName = null is invalid: edge gateway needs a GatewayClass name: with "
     "ingressClassName alb the one the program creates"),
    ("local", {"edge": "gateway", "gatewayClassName": "alb", "ingressClassName": "alb"},
     "ingressClassName = \"alb\" is invalid: an ALB Gateway needs the AWS Load Balancer "
     "Controller of an AWS stack"),
])
def test_aws_gateway_config_errors_name_the_key(stack: str, overrides: dict[str, Any],
                                                expected: str) -> None:
    assert expected in config_error(stack, **overrides)


def test_without_a_domain_the_gateway_gets_no_record_and_no_lookup() -> None:
    dev = render("dev", GATEWAY)
    assert dev.one(f"{GW}Gateway").inputs["spec"]["listeners"] == [
        {"name": "http", "protocol": "HTTP", "port": 80,
         "allowedRoutes": {"namespaces": {"from": "Same"}}}]
    assert "listenerConfigurations" not in dev.one(f"{LBC}LoadBalancerConfiguration").inputs[
        "spec"]
    assert not dev.of_type(RECORD)
    assert "aws:lb/getLoadBalancer:getLoadBalancer" not in {token for token, _ in dev.invokes}


def test_upgrading_a_running_stack_from_chart_1_14_updates_the_controller_in_place() -> None:
    """The stack as the 1.14 chart left it (the chart installed its own CRDs, the policy lacked
    the 3.x permissions, no adopting provider) against today's: the release and its policy are
    updated at the URNs they had, the CRDs and their provider are new, nothing else moves."""
    today = render("prod")
    before = []
    for resource in today.resources:
        if resource.name in ("eks-crds", "addons-alb-controller-crds"):
            continue
        inputs = dict(resource.inputs)
        if resource.name == "addons-aws-load-balancer-controller":
            inputs = {k: v for k, v in inputs.items() if k != "skipCrds"}
            inputs["version"] = "1.14.0"
        elif resource.name == "addons-alb-controller-pod-identity-inline":
            inputs["policy"] = inputs["policy"].replace(
                ', "elasticloadbalancing:SetRulePriorities"', "")
        before.append(type(resource)(**{**resource.__dict__, "inputs": inputs}))
    found = summary(plan(Rendered("prod", before), today))
    assert found == {
        "create": {"kubernetes/eks-crds", "ConfigGroup/addons-alb-controller-crds"},
        "update": {"Release/addons-aws-load-balancer-controller",
                   "RolePolicy/addons-alb-controller-pod-identity-inline"}}
