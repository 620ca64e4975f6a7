// Validates custom resources against the schemas of their CRDs (kubernetes-models).
// stdin: a JSON array of objects; stdout: a JSON array of {kind, name, error} (error null when
// valid). Unknown kinds are errors, so a new custom resource cannot go unchecked.
import { AnalysisTemplate } from "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/AnalysisTemplate";
import { Rollout } from "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/Rollout";
import { Gateway } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/Gateway";
import { GatewayClass } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/GatewayClass";
import { HTTPRoute } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute";
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
import { TriggerAuthentication } from "@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication";
import { PodMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";

const MODELS = {
  "argoproj.io/v1alpha1/AnalysisTemplate": AnalysisTemplate,
  "argoproj.io/v1alpha1/Rollout": Rollout,
  "gateway.networking.k8s.io/v1/Gateway": Gateway,
  "gateway.networking.k8s.io/v1/GatewayClass": GatewayClass,
  "gateway.networking.k8s.io/v1/HTTPRoute": HTTPRoute,
  "keda.sh/v1alpha1/ScaledObject": ScaledObject,
  "keda.sh/v1alpha1/TriggerAuthentication": TriggerAuthentication,
  "monitoring.coreos.com/v1/PodMonitor": PodMonitor,
  "monitoring.coreos.com/v1/PrometheusRule": PrometheusRule,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
};

let input = "";
for await (const chunk of process.stdin) input += chunk;
const results = JSON.parse(input).map((obj) => {
  const Model = MODELS[`${obj.apiVersion}/${obj.kind}`];
  const name = obj.metadata?.name ?? null;
  if (!Model) return { kind: obj.kind, name, error: `no schema for ${obj.apiVersion} ${obj.kind}` };
  try {
    new Model(obj).validate();
    return { kind: obj.kind, name, error: null };
  } catch (error) {
    return { kind: obj.kind, name, error: String(error.message ?? error) };
  }
});
process.stdout.write(JSON.stringify(results));
