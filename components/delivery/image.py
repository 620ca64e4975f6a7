"""The app image: built from `app/` by the program, tagged by its content, pinned by digest."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker
from docker.utils import exclude_paths


def dockerignore_patterns(context: Path) -> list[str]:
    """The context's `.dockerignore` lines, read as the Docker client reads them."""
    ignore_file = context / ".dockerignore"
    if not ignore_file.exists():
        return []
    lines = (line.strip() for line in ignore_file.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def context_files(context: Path) -> list[str]:
    """The files Docker sends as the build context: `.dockerignore` applied with Docker's own
    semantics (patterns anchored at the context root, `**`, `!` exceptions; the Dockerfile is
    always sent), through docker-py's implementation of them."""
    included = exclude_paths(str(context), dockerignore_patterns(context))
    return sorted(path for path in included if (context / path).is_file())


def source_tag(context: Path) -> str:
    """A tag derived from the build context's content.

    Unchanged source gives an unchanged tag, so `pulumi preview` shows no image change; any edit
    that reaches the image gives a new tag, which immutable ECR tags require anyway.
    """
    digest = hashlib.sha256()
    for relative in context_files(context):
        digest.update(relative.encode() + b"\0" + (context / relative).read_bytes() + b"\0")
    return f"src-{digest.hexdigest()[:16]}"


@dataclass(kw_only=True)
class AppImageArgs:
    context: Path
    """Build context (the `app/` directory, holding the Dockerfile)."""
    repository: pulumi.Input[str]
    """Image repository without tag, e.g. an ECR URL or `localhost:5001/agent-service`."""
    platform: str
    """Target platform, e.g. `linux/amd64`."""
    push: bool
    """Push to the registry; False only builds into the local Docker engine."""
    registry_server: pulumi.Input[str] | None = None
    """Registry to log in to before pushing (None: no login, e.g. a local registry)."""
    registry_username: pulumi.Input[str] | None = None
    """Registry user."""
    registry_password: pulumi.Input[str] | None = None
    """Registry password (secret)."""


class AppImage(pulumi.ComponentResource):
    """Builds the service image; `image_ref` is what Deployments use."""

    tag: str
    image_ref: pulumi.Output[str]

    def __init__(self, name: str, args: AppImageArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:image:AppImage", name, None, opts)
        dockerfile = args.context / "Dockerfile"
        if not dockerfile.is_file():
            raise ValueError(f"context: {dockerfile} does not exist")
        self.tag = source_tag(args.context)
        registry = None
        if args.push and args.registry_server is not None:
            registry = docker.RegistryArgs(server=args.registry_server,
                                           username=args.registry_username,
                                           password=args.registry_password)
        self.image = docker.Image(
            f"{name}-image",
            image_name=pulumi.Output.concat(args.repository, ":", self.tag),
            build=docker.DockerBuildArgs(context=str(args.context), dockerfile=str(dockerfile),
                                         platform=args.platform),
            registry=registry,
            skip_push=not args.push,
            # A preview must not build or push anything.
            build_on_preview=False,
            opts=pulumi.ResourceOptions(parent=self))
        # Pushed images are pinned by digest; a local-only image has no registry digest, and its
        # content-derived tag is what the local cluster's container runtime can resolve.
        self.image_ref = self.image.repo_digest if args.push else self.image.image_name
        self.register_outputs({"image_ref": self.image_ref})
