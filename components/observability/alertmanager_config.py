"""Alertmanager's configuration, built from the stack's receivers.

Critical alerts page through PagerDuty (when a routing key is set) and are also posted with
everything else to Slack and/or e-mail. A critical alert silences the warning of the same name, so a
burning budget pages once instead of paging and ticketing. Without any receiver, alerts are only
visible in Alertmanager and Grafana (and the program warns on `pulumi up`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.config.monitoring import MonitoringSettings

SLACK_TITLE = '[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }}'
SLACK_TEXT = ('{{ range .Alerts }}*{{ .Annotations.summary }}*\n{{ .Annotations.description }}\n'
              '<{{ .Annotations.runbook_url }}|Runbook>\n{{ end }}')


def alertmanager_config(m: MonitoringSettings, secrets: Mapping[str, str]) -> dict[str, Any]:
    """The alertmanager.yaml document. `secrets` holds the receiver credentials that are set:
    alertSlackWebhookUrl, alertPagerdutyRoutingKey, alertSmtpPassword."""
    notify: dict[str, Any] = {"name": "notify"}
    if m.slack:
        notify["slack_configs"] = [{
            "api_url": secrets["alertSlackWebhookUrl"], "channel": m.slack_channel,
            "send_resolved": True, "title": SLACK_TITLE, "text": SLACK_TEXT}]
    if m.email:
        email: dict[str, Any] = {"to": m.email.to, "from": m.email.sender,
                                 "smarthost": m.email.smarthost, "require_tls": True,
                                 "send_resolved": True}
        if m.email.username:
            email["auth_username"] = m.email.username
            email["auth_password"] = secrets["alertSmtpPassword"]
        notify["email_configs"] = [email]
    receivers: list[dict[str, Any]] = [{"name": "null"}, notify]
    routes: list[dict[str, Any]] = [
        # kube-prometheus-stack's always-firing heartbeat and its inhibitor helper.
        {"receiver": "null", "matchers": ['alertname=~"Watchdog|InfoInhibitor"']},
    ]
    if m.pagerduty:
        receivers.append({"name": "page", "pagerduty_configs": [{
            "routing_key": secrets["alertPagerdutyRoutingKey"], "send_resolved": True,
            "description": "{{ .CommonAnnotations.summary }}",
            "links": [{"href": "{{ .CommonAnnotations.runbook_url }}", "text": "Runbook"}]}]})
        routes.append({"receiver": "page", "matchers": ['severity="critical"'],
                       "continue": True})
    routes.append({"receiver": "notify" if len(notify) > 1 else "null"})
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": "null",
            "group_by": ["alertname", "namespace", "slo"],
            "group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h",
            "routes": routes,
        },
        "inhibit_rules": [{"source_matchers": ['severity="critical"'],
                           "target_matchers": ['severity="warning"'],
                           "equal": ["alertname", "namespace"]}],
        "receivers": receivers,
    }
