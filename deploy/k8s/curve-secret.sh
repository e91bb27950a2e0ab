#!/bin/sh
# curve-secret.sh: the CURVE keys of an empq cluster as the Secret empq-curve
# (namespace empq), before `kubectl apply -k deploy/k8s` (docs/deploy.md).
#
#   sh deploy/k8s/curve-secret.sh            # create it, unless it exists
#   sh deploy/k8s/curve-secret.sh --rotate   # new keys in place of the old
#   sh deploy/k8s/curve-secret.sh --print    # print the Secret, apply nothing
#
# `empq keygen` makes three key pairs in a private temporary folder (removed
# at exit): broker, workers (one pair shared by every pod of the worker
# Deployment) and cli (the command line: `kubectl exec deploy/broker -- empq`
# and the submit Job). The Secret holds broker.key, broker.pub, workers.key,
# workers.pub, cli.key and cli.pub; each pod mounts only the items it needs.
#
# Environment: EMPQ (the empq program; default: empq on PATH), KUBECTL
# (default: kubectl), EMPQ_NAMESPACE (default: empq).
set -eu

names="broker workers cli"
secret="empq-curve"
empq=${EMPQ:-empq}
kubectl=${KUBECTL:-kubectl}
namespace=${EMPQ_NAMESPACE:-empq}

mode=create
case "${1:-}" in
    "") ;;
    --rotate) mode=rotate ;;
    --print) mode=print ;;
    -h | --help)
        sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "curve-secret.sh: unknown option $1 (--rotate, --print, --help)" >&2
        exit 2
        ;;
esac

if [ "$mode" = create ] && "$kubectl" -n "$namespace" get secret "$secret" >/dev/null 2>&1; then
    echo "curve-secret.sh: Secret $secret exists in namespace $namespace; keys unchanged" \
        "(--rotate makes new ones)"
    exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/empq-curve.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
chmod 0700 "$tmp"

from=""
for n in $names; do
    "$empq" keygen --out "$tmp" --name "$n" >/dev/null
    from="$from --from-file=$tmp/$n.key --from-file=$tmp/$n.pub"
done

# $from holds options without spaces (the folder comes from mktemp): split on purpose
if [ "$mode" = print ]; then
    # shellcheck disable=SC2086
    "$kubectl" -n "$namespace" create secret generic "$secret" $from --dry-run=client -o yaml
    exit 0
fi
# shellcheck disable=SC2086
"$kubectl" -n "$namespace" create secret generic "$secret" $from --dry-run=client -o yaml |
    "$kubectl" apply -f -
echo "curve-secret.sh: Secret $secret in namespace $namespace: $names key pairs"
if [ "$mode" = rotate ]; then
    echo "curve-secret.sh: restart the pods to use the new keys:" \
        "kubectl -n $namespace rollout restart deployment/broker deployment/worker"
fi
