#!/usr/bin/env bash
# Builds the cluster suite's Go programs into .cache/cluster/ once per machine: a real kube-apiserver on an
# embedded etcd (apiserver/) and Knative's ApiServerSource receive adapter (adapter/), each its own Go
# module so their dependency versions do not meet. A binary is rebuilt only when its module's files or the
# Go version changed; Go's module and build caches (default locations) make a rebuild after an edit cheap.
# Also fetches the CustomResourceDefinitions the deploy/ dry-run needs (Knative's from its module, the
# Prometheus Operator's from its own) and records where they are in .cache/cluster/crds.env.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
for tool in go kubectl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "test/cluster/build.sh: $tool is not installed (kubectl: scripts/install-test-deps.sh)" >&2; exit 1; }
done
out="$here/../../.cache/cluster"
mkdir -p "$out"
PROMETHEUS_OPERATOR_MODULE=github.com/prometheus-operator/prometheus-operator@v0.85.0

# The API server reports (and kubectl checks) the Kubernetes release it was built from.
kubernetes="$(sed -n 's/^\tk8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' "$here/apiserver/go.mod")"
IFS=. read -r major minor _ <<<"${kubernetes#v}"
version_flags="-X k8s.io/component-base/version.gitVersion=$kubernetes -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor"

build() { # binary-name module-dir package [linker flags]
  local name=$1 dir="$here/$2" pkg=$3 ldflags="-s -w ${4:-}" stamp started
  stamp="$( (cat "$dir"/go.mod "$dir"/go.sum "$dir"/*.go; echo "$ldflags") | sha256sum | cut -c1-16) $(go env GOVERSION)"
  if [ -x "$out/$name" ] && [ "$(cat "$out/$name.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "== $name: up to date"
    return
  fi
  echo "== building $name (the first build on a machine compiles Kubernetes: minutes)"
  started=$(date +%s)
  (cd "$dir" && nice -n 19 go build -buildvcs=false -ldflags="$ldflags" -o "$out/$name.new" "$pkg")
  mv "$out/$name.new" "$out/$name"
  echo "$stamp" > "$out/$name.stamp"
  echo "== built $name in $(( $(date +%s) - started )) s"
}

build test-apiserver apiserver . "$version_flags"
build apiserver-receive-adapter adapter .

module_dir() { # run in $1: the module cache folder of module $2
  (cd "$1" && go mod download -json "$2" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
}
knative="$(module_dir "$here/adapter" knative.dev/eventing)"
prometheus_operator="$(module_dir "$out" "$PROMETHEUS_OPERATOR_MODULE")"
cat > "$out/crds.env" <<ENV
KNATIVE_CRDS=$knative/config/core/resources
PROMETHEUS_OPERATOR_CRDS=$prometheus_operator/example/prometheus-operator-crd
ENV
