"""The API's name on AWS (`domainName` in the Route 53 zone `hostedZoneId`): its ACM
certificate, validated in DNS, and the alias record pointing the name at the ALB.

The alias record is written from the load balancer's address by the program, not by
external-dns: it is a resource of the stack, so `pulumi preview` shows it and the policy pack
sees it; the program writes two records in one zone, and nothing in the cluster holds Route 53
permissions. The load balancer controller creates the ALB when the Ingress or Gateway appears;
pulumi-kubernetes waits for an ALB Ingress to get its address (and for a Gateway to be
Programmed), so the record follows in one `pulumi up`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.load_balancer_controller import ALB_GATEWAY_TAG, CLUSTER_TAG

# Long enough for resolvers to follow a changed validation record within minutes; the
# certificate is validated once and then renewed by ACM through the same record.
VALIDATION_RECORD_TTL = 300


@dataclass(frozen=True, kw_only=True)
class ApiCertificateArgs:
    domain_name: str
    hosted_zone_id: str
    tags: Mapping[str, str]


class ApiCertificate(pulumi.ComponentResource):
    """An ACM certificate for the API's name, validated through a record in the hosted zone."""

    certificate_arn: pulumi.Output[str]
    """The certificate's ARN once ACM has validated it: the Ingress waits for it."""

    def __init__(self, name: str, args: ApiCertificateArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:edge:ApiCertificate", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        certificate = aws.acm.Certificate(
            f"{name}-certificate", domain_name=args.domain_name, validation_method="DNS",
            key_algorithm="EC_prime256v1", tags=dict(args.tags), opts=child)
        # One name, so one validation record (a certificate with alternative names would need
        # one per name).
        option = certificate.domain_validation_options[0]
        record = aws.route53.Record(
            f"{name}-validation", zone_id=args.hosted_zone_id,
            name=option.resource_record_name, type=option.resource_record_type,
            records=[option.resource_record_value], ttl=VALIDATION_RECORD_TTL,
            # A certificate for the same name made before (by hand, or a replaced one) left
            # the same record: taking it over is what renewing needs.
            allow_overwrite=True, opts=child)
        validation = aws.acm.CertificateValidation(
            f"{name}-validation", certificate_arn=certificate.arn,
            validation_record_fqdns=[record.fqdn], opts=child)
        self.certificate_arn = validation.certificate_arn
        self.register_outputs({"certificate_arn": self.certificate_arn})


def gateway_load_balancer_hostname(cluster_name: str, gateway: str,
                                   after: pulumi.Resource) -> pulumi.Output[str]:
    """The DNS name of the ALB the controller made for the Gateway `namespace/name` (a
    Gateway's status is not an output pulumi-kubernetes gives), read once the Gateway is
    Programmed; unknown in a preview that creates the Gateway."""
    return aws.lb.get_load_balancer_output(
        tags={CLUSTER_TAG: cluster_name, ALB_GATEWAY_TAG: gateway},
        opts=pulumi.InvokeOutputOptions(depends_on=[after])).dns_name


@dataclass(frozen=True, kw_only=True)
class ApiDnsRecordArgs:
    domain_name: str
    hosted_zone_id: str
    load_balancer_hostname: pulumi.Input[str]
    """The ALB's DNS name, from the Ingress's status or the Gateway's load balancer."""


class ApiDnsRecord(pulumi.ComponentResource):
    """`domainName` as an alias of the ALB (an A record answered by Route 53 itself, free of
    query charges, following the ALB's addresses as they change)."""

    def __init__(self, name: str, args: ApiDnsRecordArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:edge:ApiDnsRecord", name, None, opts)
        alb_zone = aws.lb.get_hosted_zone_id_output(load_balancer_type="application",
                                                    opts=pulumi.InvokeOutputOptions(parent=self))
        aws.route53.Record(
            f"{name}-alias", zone_id=args.hosted_zone_id, name=args.domain_name, type="A",
            aliases=[aws.route53.RecordAliasArgs(
                name=args.load_balancer_hostname, zone_id=alb_zone.id,
                evaluate_target_health=True)],
            opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})
