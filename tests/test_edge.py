"""The API's name on AWS (`domainName` + `hostedZoneId`): the ACM certificate validated in
Route 53, the HTTPS Ingress on that name, the alias record to the ALB, and what adding,
changing or removing the domain plans on a running stack."""

from __future__ import annotations

from typing import Any

import pytest
from plan import plan, summary
from test_config import config_error

from harness import Rendered, render
from policy_runner import evaluate

DOMAIN = {"domainName": "api.example.com", "hostedZoneId": "Z0123456789ABCDEFGHIJ"}
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
RECORD = "aws:route53/record:Record"


@pytest.fixture(scope="module")
def prod_with_domain() -> Rendered:
    return render("prod", DOMAIN)


def test_the_certificate_is_validated_in_the_zone(prod_with_domain: Rendered) -> None:
    certificate = prod_with_domain.one("aws:acm/certificate:Certificate")
    assert certificate.inputs["domainName"] == "api.example.com"
    assert certificate.inputs["validationMethod"] == "DNS"
    validation_record = prod_with_domain.named("api-certificate-validation", RECORD).inputs
    # The record ACM asked for (the harness answers as ACM does), in the configured zone.
    assert (validation_record["zoneId"], validation_record["type"],
            validation_record["name"], validation_record["records"]) == (
        "Z0123456789ABCDEFGHIJ", "CNAME", "_0a1b2c.api.example.com.",
        ["_3d4e5f.xyz.acm-validations.aws."])
    validation = prod_with_domain.one("aws:acm/certificateValidation:CertificateValidation")
    assert validation.inputs["validationRecordFqdns"] == ["_0a1b2c.api.example.com"]


def test_prod_serves_the_api_over_https_on_the_domain(prod_with_domain: Rendered) -> None:
    ingress = prod_with_domain.one(INGRESS)
    assert ingress.inputs["spec"]["rules"][0]["host"] == "api.example.com"
    annotations = ingress.inputs["metadata"]["annotations"]
    certificate = prod_with_domain.one("aws:acm/certificate:Certificate")
    assert annotations["alb.ingress.kubernetes.io/certificate-arn"].endswith(
        f":{certificate.name}")
    assert annotations["alb.ingress.kubernetes.io/ssl-redirect"] == "443"
    # The Ingress waits for ACM to validate the certificate: an ALB listener refuses one
    # that is still pending.
    assert "api-certificate-validation" in ingress.depends_on
    assert prod_with_domain.outputs["api_url"] == "https://api.example.com"


def test_the_name_is_an_alias_of_the_albs_address(prod_with_domain: Rendered) -> None:
    alias = prod_with_domain.named("api-dns-alias", RECORD)
    assert (alias.inputs["zoneId"], alias.inputs["name"], alias.inputs["type"]) == (
        "Z0123456789ABCDEFGHIJ", "api.example.com", "A")
    (target,) = alias.inputs["aliases"]
    # The address the load balancer controller wrote into the Ingress's status, and Route 53's
    # zone for application load balancers in the region.
    assert target == {"name": "k8s-agent-api-0123456789.eu-west-1.elb.amazonaws.com",
                      "zoneId": "Z32O12XQLNTSW2", "evaluateTargetHealth": True}
    assert "agent-api" in alias.depends_on


def test_prod_with_a_domain_passes_the_policy_pack(prod_with_domain: Rendered) -> None:
    outcome = evaluate(prod_with_domain)
    assert {name: found for name, found in outcome.violations.items() if found} == {}
    assert not outcome.unknown


@pytest.mark.parametrize("stack", ["dev", "prod", "local"])
def test_no_domain_no_certificate_and_no_record(stacks: dict[str, Rendered], stack: str) -> None:
    rendered = stacks[stack]
    assert not rendered.of_type("aws:acm/certificate:Certificate")
    assert not rendered.of_type(RECORD)


def test_adding_a_domain_to_running_prod_creates_and_deletes_nothing(
        stacks: dict[str, Rendered], prod_with_domain: Rendered) -> None:
    steps = plan(stacks["prod"], prod_with_domain)
    ops = summary(steps)
    assert set(ops) == {"create", "update"}
    assert ops["create"] >= {
        "Certificate/api-certificate-certificate", "Record/api-certificate-validation",
        "CertificateValidation/api-certificate-validation", "Ingress/agent-api",
        "Record/api-dns-alias"}
    # The controller's readiness gates for the ALB's targets: a label, updated in place. The
    # API's Rollout gains the ALB's traffic split (in place), between two new Services.
    assert ops["update"] == {"Namespace/agent-namespace", "Rollout/agent-api-rollout"}
    assert ops["create"] >= {"Service/agent-api-stable", "Service/agent-api-canary"}


def test_a_new_domain_moves_the_ingress_in_place(prod_with_domain: Rendered) -> None:
    """The certificate and records for a new name are replaced by AWS (a new name is a new
    certificate), which Pulumi does create-before-delete unless told otherwise: the new
    certificate is validated and on the Ingress before the old one is deleted."""
    moved = render("prod", {**DOMAIN, "domainName": "agents.example.com"})
    steps = plan(prod_with_domain, moved)
    ingress = next(s for s in steps.values() if s.resource.type == INGRESS)
    assert (ingress.op, ingress.reasons) == ("update", ["spec.rules"])
    edge = [r for r in moved.resources
            if r.type.startswith(("aws:acm/", "aws:route53/"))]
    assert len(edge) == 4 and not [r for r in edge if r.delete_before_replace]
    assert moved.named("api-dns-alias", RECORD).inputs["name"] == "agents.example.com"
    assert not [s for s in steps.values() if s.op == "delete"]


@pytest.mark.parametrize(("stack", "overrides", "expected"), [
    ("prod", {"domainName": "api.example.com"},
     "agent-platform:hostedZoneId = null is invalid: domainName and hostedZoneId go together"),
    ("prod", {"hostedZoneId": "Z0123456789ABCDEFGHIJ"},
     "agent-platform:domainName = null is invalid: domainName and hostedZoneId go together"),
    ("prod", {**DOMAIN, "ingressCertificateArn":
              "arn:aws:acm:eu-west-1:123456789012:certificate/abc-123"},
     "agent-platform:ingressCertificateArn = \"arn:aws:acm:eu-west-1:123456789012:certificate/"
     "abc-123\" is invalid: with domainName the program makes the certificate"),
    ("prod", {**DOMAIN, "ingressHost": "other.example.com"},
     "agent-platform:ingressHost = \"other.example.com\" is invalid: with domainName the API "
     "answers on api.example.com"),
    ("prod", {**DOMAIN, "domainName": "API.example.com"},
     "agent-platform:domainName = \"API.example.com\" is invalid: expected a lower-case DNS "
     "name"),
    ("prod", {**DOMAIN, "hostedZoneId": "zone-1"},
     "agent-platform:hostedZoneId = \"zone-1\" is invalid: expected a Route 53 hosted zone id"),
    ("dev", {**DOMAIN, "ingressClassName": "nginx"},
     "agent-platform:domainName = \"api.example.com\" is invalid: the program's certificate "
     "and DNS record are for an ALB"),
    ("local", DOMAIN,
     "agent-platform:domainName = \"api.example.com\" is invalid: the local stack has no ACM "
     "or Route 53"),
    ("prod", {**DOMAIN, "grafanaIngressHost": "grafana.example.com"},
     "agent-platform:grafanaIngressHost = \"grafana.example.com\" is invalid: the certificate "
     "domainName makes covers the API's name only"),
])
def test_bad_domain_settings_name_the_key(stack: str, overrides: dict[str, Any],
                                          expected: str) -> None:
    assert expected in config_error(stack, **overrides)


GRAFANA = {**DOMAIN, "grafanaDomainName": "grafana.example.com"}


def test_grafana_gets_its_own_name_certificate_and_record() -> None:
    stack = render("prod", GRAFANA)
    certificates = {c.inputs["domainName"]: c.name
                    for c in stack.of_type("aws:acm/certificate:Certificate")}
    assert set(certificates) == {"api.example.com", "grafana.example.com"}
    (grafana,) = [i for i in stack.of_type(INGRESS) if i.name == "monitoring-grafana"]
    annotations = grafana.inputs["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/certificate-arn"].endswith(
        ":grafana-certificate-certificate")
    assert annotations["alb.ingress.kubernetes.io/ssl-redirect"] == "443"
    assert annotations["alb.ingress.kubernetes.io/healthcheck-path"] == "/api/health"
    (rule,) = grafana.inputs["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert (rule["host"], backend["name"], backend["port"]) == (
        "grafana.example.com", "kube-prometheus-stack-grafana", {"number": 80})
    alias = stack.named("grafana-dns-alias", RECORD).inputs
    assert (alias["name"], alias["type"], alias["zoneId"]) == (
        "grafana.example.com", "A", "Z0123456789ABCDEFGHIJ")
    # The chart's own Grafana Ingress stays off: one Ingress, the program's.
    release = stack.named("monitoring-kube-prometheus-stack").inputs
    assert release["values"]["grafana"]["ingress"] == {"enabled": False}


def test_grafana_on_its_name_only_adds_to_a_running_stack() -> None:
    steps = plan(render("prod", DOMAIN), render("prod", GRAFANA))
    assert set(summary(steps)) == {"create"}


@pytest.mark.parametrize(("stack", "overrides", "expected"), [
    ("prod", {"grafanaDomainName": "grafana.example.com"},
     "grafanaDomainName = \"grafana.example.com\" is invalid: needs an AWS stack"),
    ("local", {"grafanaDomainName": "grafana.example.com"}, "needs an AWS stack"),
    ("prod", {**GRAFANA, "grafanaIngressHost": "g.example.com"},
     "with grafanaDomainName Grafana answers on grafana.example.com"),
    ("prod", {**GRAFANA, "grafanaDomainName": "Grafana!"}, "expected a lower-case DNS name"),
])
def test_grafana_domain_config_errors_name_the_key(stack: str, overrides: dict[str, Any],
                                                   expected: str) -> None:
    assert expected in config_error(stack, **overrides)


GATEWAY = {"edge": "gateway", "gatewayClassName": "eg"}


def test_the_gateway_edge_serves_the_api_like_the_ingress() -> None:
    plain = render("local", GATEWAY)
    assert not plain.of_type(INGRESS)
    (gateway,) = plain.of_type("kubernetes:gateway.networking.k8s.io/v1:Gateway")
    assert gateway.inputs["spec"]["gatewayClassName"] == "eg"
    assert [listener["port"] for listener in gateway.inputs["spec"]["listeners"]] == [80]
    (route,) = plain.of_type("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute")
    assert route.inputs["spec"]["hostnames"] == ["agent.localhost"]
    assert route.inputs["spec"]["rules"][0]["backendRefs"] == [
        {"name": "agent-service-api", "port": 80}]
    tls = render("local", {**GATEWAY, "ingressTlsSecret": "api-tls"})
    routes = {r.name: r.inputs["spec"] for r in tls.of_type(
        "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute")}
    # HTTPS serves, HTTP only redirects, as an Ingress with TLS does.
    assert routes["agent-api-route"]["parentRefs"][0]["sectionName"] == "https"
    redirect = routes["agent-api-redirect"]["rules"][0]["filters"][0]["requestRedirect"]
    assert redirect == {"scheme": "https", "statusCode": 301}


def test_switching_the_local_edge_creates_the_gateway_before_the_ingress_goes() -> None:
    found = summary(plan(render("local"), render("local", GATEWAY)))
    assert found == {"create": {"Gateway/agent-api-gateway", "HTTPRoute/agent-api-route"},
                     "delete": {"Ingress/agent-api"}}


@pytest.mark.parametrize(("stack", "overrides", "expected"), [
    ("local", {"edge": "gateway"}, "gatewayClassName = null is invalid: edge gateway needs"),
    ("local", {"edge": "mesh"}, "allowed values are ingress, gateway"),
])
def test_gateway_config_errors_name_the_key(stack: str, overrides: dict[str, Any],
                                            expected: str) -> None:
    assert expected in config_error(stack, **overrides)


def test_prod_edges_must_terminate_tls(prod_with_domain: Rendered) -> None:
    assert evaluate(prod_with_domain).violations["edge-terminates-tls"] == []
    ingress = next(i for i in prod_with_domain.of_type(INGRESS) if i.name == "agent-api")
    annotations = {k: v for k, v in ingress.inputs["metadata"]["annotations"].items()
                   if not k.endswith("certificate-arn")}
    bare = type(ingress)(ingress.type, ingress.name, {**ingress.inputs, "metadata": {
        **ingress.inputs["metadata"], "annotations": annotations}}, urn=ingress.urn)
    others = [r for r in prod_with_domain.resources if r is not ingress]
    (violation,) = evaluate(Rendered("prod", [*others, bare])).violations["edge-terminates-tls"]
    assert "serves without TLS" in violation.message
    # A Gateway without an HTTPS listener, on a stack whose pack config requires TLS.
    plain = render("local", GATEWAY)
    outcome = evaluate(plain, {"all": "mandatory", "edge-terminates-tls": {"required": True}})
    (violation,) = outcome.violations["edge-terminates-tls"]
    assert "no HTTPS listener" in violation.message
    tls = render("local", {**GATEWAY, "ingressTlsSecret": "api-tls"})
    assert evaluate(tls, {"all": "mandatory"}).violations["edge-terminates-tls"] == []
