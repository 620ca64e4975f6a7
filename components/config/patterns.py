"""Shapes of config values that several settings modules check."""

from __future__ import annotations

import re

DNS_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+"
                      r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
K8S_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
IAM_ROLE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
QUANTITY = re.compile(r"^[1-9]\d*(Mi|Gi|Ti)$")
HTTP_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
