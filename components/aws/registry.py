"""ECR repository for the app image: immutable tags, scanned on push, old images expired."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(kw_only=True)
class RegistryArgs:
    repository_name: str
    """ECR repository name."""
    retain_count: int
    """How many of the newest images the lifecycle policy keeps."""
    tags: Mapping[str, str]
    """Tags for every resource."""
    protect: bool
    """Refuse to delete the repository (and every image in it) through Pulumi."""


def lifecycle_policy(retain_count: int) -> str:
    return json.dumps({"rules": [{
        "rulePriority": 1,
        "description": f"Keep the newest {retain_count} images",
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                      "countNumber": retain_count},
        "action": {"type": "expire"},
    }]})


class Registry(pulumi.ComponentResource):
    """The app's ECR repository and the credentials to push to it."""

    repository_url: pulumi.Output[str]
    server: pulumi.Output[str]
    username: pulumi.Output[str]
    password: pulumi.Output[str]

    def __init__(self, name: str, args: RegistryArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:registry:Registry", name, None, opts)
        if args.retain_count < 1:
            raise ValueError(f"retain_count: need at least 1, got {args.retain_count}")
        child = pulumi.ResourceOptions(parent=self)
        self.repository = aws.ecr.Repository(
            f"{name}-repository", name=args.repository_name,
            # Deployments pin digests; immutable tags stop a push from silently
            # changing what a tag means.
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                scan_on_push=True),
            encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(
                encryption_type="KMS")],
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect))
        aws.ecr.LifecyclePolicy(f"{name}-lifecycle", repository=self.repository.name,
                                policy=lifecycle_policy(args.retain_count), opts=child)
        credentials = aws.ecr.get_authorization_token_output(
            registry_id=self.repository.registry_id)
        self.repository_url = self.repository.repository_url
        self.server = credentials.proxy_endpoint
        self.username = credentials.user_name
        self.password = pulumi.Output.secret(credentials.password)
        self.register_outputs({"repository_url": self.repository_url})
