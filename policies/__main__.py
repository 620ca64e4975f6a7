"""The agent-platform policy pack. Rules live in importable modules; this file only assembles them.

Run with the CLI:
    pulumi preview --policy-pack policies --policy-pack-config policies/config/<stack>.json
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from aws_rules import AWS_POLICIES
from backup_rules import BACKUP_POLICIES
from budget_rules import BUDGET_POLICIES
from delivery_rules import DELIVERY_POLICIES
from kubernetes_rules import KUBERNETES_POLICIES
from stack_rules import STACK_POLICIES

# Mandatory unless a stack's pack config says otherwise: the secure setting is the default.
PolicyPack(
    name="agent-platform",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[*AWS_POLICIES, *BACKUP_POLICIES, *BUDGET_POLICIES, *DELIVERY_POLICIES,
              *KUBERNETES_POLICIES, *STACK_POLICIES],
)
