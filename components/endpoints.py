"""The contracts data stores hand to workloads, identical for AWS and in-cluster variants.

Workload code takes these and never asks which stack it is on.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import pulumi

# The ports every Postgres and Redis/Valkey of the platform listens on, so egress rules and
# security groups agree with the servers.
POSTGRES_PORT = 5432
REDIS_PORT = 6379


@dataclass(frozen=True)
class DatabaseEndpoint:
    host: pulumi.Output[str]
    """DNS name of the Postgres primary."""
    port: pulumi.Output[int]
    """TCP port."""
    database: str
    """Database the service uses."""
    user: str
    """Login role."""
    password: pulumi.Output[str]
    """Password, always a Pulumi secret."""
    sslmode: str
    """libpq sslmode the server demands: `require` on RDS, `disable` in-cluster."""

    def url(self, scheme: str = "postgresql") -> pulumi.Output[str]:
        """A connection URL; secret because it embeds the password."""
        return pulumi.Output.secret(pulumi.Output.all(self.host, self.port, self.password).apply(
            lambda a: f"{scheme}://{quote(self.user, safe='')}:{quote(a[2], safe='')}"
                      f"@{a[0]}:{a[1]}/{self.database}?sslmode={self.sslmode}"))


@dataclass(frozen=True)
class CacheEndpoint:
    host: pulumi.Output[str]
    """DNS name of the Redis/Valkey primary."""
    port: pulumi.Output[int]
    """TCP port."""
    password: pulumi.Output[str]
    """AUTH token, always a Pulumi secret."""
    tls: bool
    """Whether the server requires TLS (`rediss://`)."""

    def url(self, db: int = 0) -> pulumi.Output[str]:
        """A connection URL; secret because it embeds the password."""
        scheme = "rediss" if self.tls else "redis"
        return pulumi.Output.secret(pulumi.Output.all(self.host, self.port, self.password).apply(
            lambda a: f"{scheme}://:{quote(a[2], safe='')}@{a[0]}:{a[1]}/{db}"))
