#!/usr/bin/env bash
# Proves the target graph is enforced: in a scratch copy of the package, each forbidden import below
# is added to one file of the importing target, and that target's build must fail. (The edges are
# the architecture's back-edges and side-edges: Package.swift's header lists the allowed ones.)
#
#   tools/check-layering.sh            # prints one line per edge; exits non-zero if any build succeeds
set -euo pipefail
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-swift}
COPY=$(mktemp -d /tmp/swiftrain-layering.XXXXXX)
trap 'rm -rf "$COPY"' EXIT
cp -r Package.swift Sources Tests "$COPY/"
[ -f Package.resolved ] && cp Package.resolved "$COPY/"
# Dependency checkouts come along so the copy builds offline; build products do not (their paths differ).
mkdir -p "$COPY/.build"
for d in checkouts repositories workspace-state.json; do
    [ -e ".build/$d" ] && cp -r ".build/$d" "$COPY/.build/"
done
build() { (cd "$COPY" && $SWIFT build --target "$1" --explicit-target-dependency-import-check=error 2>&1); }

# importer target : module it must not import
EDGES=(
    "RainModel:RainZMQ"         # the model knows no sockets
    "RainModel:RainTraining"    # a cycle: training depends on the model
    "RainData:RainModel"        # data comes before the model
    "RainProtocol:RainModel"    # the protocol is pure: no model, no OpenBLAS
    "RainTraining:RainZMQ"      # training sees only the Transport protocols
    "RainTraining:CZeroMQ"      # … and never libzmq itself
    "RainEvaluation:RainLaunch" # scoring does not start processes
    "RainNetCDF:RainData"       # NetCDF files sit below the datasets (the converters read them)
    "RainConvert:RainModel"     # converting data needs no model
    "RainZarr:RainData"         # Zarr stores sit below the datasets too (the converters and predict use them)
    "RainZarr:CNetCDF"          # each C library enters through its own target
    "RainSuite:RainLaunch"      # a suite starts runs as child processes, never in-process workers
)

failed=0
# The unmodified copy must build, or a failure below would prove nothing.
for edge in "${EDGES[@]}"; do
    importer=${edge%%:*}
    if ! out=$(build "$importer"); then
        echo "$out" | tail -n 20
        echo "FAIL  $importer does not build unmodified: fix that first"
        exit 1
    fi
done

for edge in "${EDGES[@]}"; do
    importer=${edge%%:*}; module=${edge##*:}
    file=$(ls "$COPY/Sources/$importer"/*.swift | head -n1)
    cp "$file" "$file.orig"
    { echo "import $module"; cat "$file.orig"; } > "$file"
    if out=$(build "$importer"); then
        echo "FAIL  $importer importing $module compiled: the layering is not enforced"
        failed=1
    elif why=$(echo "$out" | grep -m1 -E "error:.*$module" ); then
        echo "ok    $importer cannot import $module: ${why##*error: }"
    else
        echo "$out" | tail -n 20
        echo "FAIL  $importer importing $module failed for another reason (above)"
        failed=1
    fi
    mv "$file.orig" "$file"
done
exit $failed
