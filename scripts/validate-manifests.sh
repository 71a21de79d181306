#!/usr/bin/env bash
# Validates deploy/kubernetes/ offline: every Kubernetes resource against the API schemas that
# the PyPI package kubernetes-validate ships (strict: unknown fields are errors), and the two
# Prometheus Operator resources, which no such schema covers, by their content: the
# PrometheusRule must carry exactly deploy/prometheus/alerts.yml's groups (which promtool
# checks in .ci/run), the ServiceMonitor must scrape the Service's `metrics` port at /metrics.
# Installs python3-venv when missing and keeps its virtualenv in target/manifest-check.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/postgres-env.sh
. scripts/postgres-env.sh

KUBERNETES_VERSION="${KUBERNETES_VERSION:-1.31.0}"
venv=target/manifest-check
if [[ ! -x "$venv/bin/kubernetes-validate" ]]; then
    if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
        apt_install python3-venv
    fi
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q 'kubernetes-validate>=1.31,<2' pyyaml
fi

core=()
for f in deploy/kubernetes/*.yaml; do
    case "$(basename "$f")" in
        kustomization.yaml | servicemonitor.yaml | prometheusrule.yaml) ;;
        *) core+=("$f") ;;
    esac
done
echo "kubernetes-validate --strict -k $KUBERNETES_VERSION ${core[*]}"
"$venv/bin/kubernetes-validate" --strict -k "$KUBERNETES_VERSION" "${core[@]}"

"$venv/bin/python" - <<'PY'
import sys, yaml
base = "deploy/kubernetes/"
kust = yaml.safe_load(open(base + "kustomization.yaml"))
import os
listed = set(kust["resources"])
present = {f for f in os.listdir(base) if f.endswith(".yaml") and f != "kustomization.yaml"}
if listed != present:
    sys.exit(f"kustomization.yaml resources {sorted(listed)} differ from the files {sorted(present)}")
rule = yaml.safe_load(open(base + "prometheusrule.yaml"))
alerts = yaml.safe_load(open("deploy/prometheus/alerts.yml"))
if rule["apiVersion"] != "monitoring.coreos.com/v1" or rule["kind"] != "PrometheusRule":
    sys.exit("prometheusrule.yaml: not a monitoring.coreos.com/v1 PrometheusRule")
if rule["spec"]["groups"] != alerts["groups"]:
    sys.exit("prometheusrule.yaml: spec.groups differs from deploy/prometheus/alerts.yml")
monitor = yaml.safe_load(open(base + "servicemonitor.yaml"))
peers = yaml.safe_load(open(base + "service-peers.yaml"))
ports = {p["name"] for p in peers["spec"]["ports"]}
labels = peers["metadata"]["labels"]
selector = monitor["spec"]["selector"]["matchLabels"]
if any(labels.get(k) != v for k, v in selector.items()):
    sys.exit("servicemonitor.yaml: its selector does not match service-peers.yaml's labels")
for ep in monitor["spec"]["endpoints"]:
    if ep["port"] not in ports or ep.get("path") != "/metrics":
        sys.exit(f"servicemonitor.yaml: endpoint {ep} is not the peers Service's metrics port")
print("PrometheusRule and ServiceMonitor: consistent with alerts.yml and the Services")
PY
echo "deploy/kubernetes: all manifests valid"
