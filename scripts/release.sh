#!/usr/bin/env bash
# Publishes a release of this checkout's HEAD (.github/workflows/release.yml
# runs it; so do the release tests):
#   PHANTUN_COMMIT=<40 digits> RUNTIME_SOURCE=<this repository's URL> \
#     scripts/release.sh REPOSITORY [BUILDX ARGUMENTS...]
# On the current `docker buildx` builder: linux/amd64 and linux/arm64 pushed
# as one list to REPOSITORY:VERSION and REPOSITORY:VERSION-phantun-SHORT
# (VERSION: deno.json's; SHORT: phantun's commit, 7 digits), with the
# revision, phantun's commit and SOURCE_DATE_EPOCH (the commit's time) as
# build arguments and a max-mode provenance attestation; then the list signed
# with cosign and each platform's SBOM attached to it as a signed CycloneDX
# attestation. Signing uses the key file COSIGN_KEY when it is set, else
# keyless (the CI's OIDC identity). PHANTUN_TARBALL_SHA256 is passed on when
# set. Prints the list's digest last.
set -euo pipefail
key=()
[ -z "${COSIGN_KEY:-}" ] || key=(--key "$(realpath "$COSIGN_KEY")")
cd "$(dirname "$0")/.."
repository=${1:?usage: scripts/release.sh REPOSITORY [BUILDX ARGUMENTS...]}
shift
: "${RUNTIME_SOURCE:?set RUNTIME_SOURCE to the URL of this repository}"
[[ ${PHANTUN_COMMIT:-} =~ ^[0-9a-f]{40}$ ]] ||
  { echo "release: PHANTUN_COMMIT must be phantun's full 40-digit commit" >&2; exit 2; }
version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' deno.json)
# In the workflow, the tag must name this version.
[ -z "${GITHUB_REF_NAME:-}" ] || [ "$GITHUB_REF_NAME" = "v$version" ] ||
  { echo "release: tag $GITHUB_REF_NAME, but deno.json's version is $version" >&2; exit 2; }
tag="$repository:$version"

docker buildx build --platform linux/amd64,linux/arm64 \
  --build-arg RUNTIME_VERSION="$version" \
  --build-arg RUNTIME_SOURCE="$RUNTIME_SOURCE" \
  --build-arg RUNTIME_REVISION="$(git rev-parse HEAD)" \
  --build-arg PHANTUN_COMMIT="$PHANTUN_COMMIT" \
  --build-arg PHANTUN_TARBALL_SHA256="${PHANTUN_TARBALL_SHA256:-}" \
  --build-arg SOURCE_DATE_EPOCH="$(git log -1 --format=%ct)" \
  --provenance=mode=max --sbom=false \
  -t "$tag" -t "$tag-phantun-${PHANTUN_COMMIT:0:7}" --push "$@" .
digest=$(docker buildx imagetools inspect "$tag" --format '{{json .Manifest.Digest}}' | tr -d '"')
cosign sign --yes "${key[@]}" "$repository@$digest"

# Each platform's SBOM, from its image pulled by its own digest.
sboms=$(mktemp -d)
trap 'rm -rf "$sboms"' EXIT
docker buildx imagetools inspect "$repository@$digest" --format \
  '{{range .Manifest.Manifests}}{{if eq .Platform.OS "linux"}}{{.Platform.Architecture}} {{.Digest}}{{"\n"}}{{end}}{{end}}' |
  while read -r arch image; do
    docker pull --quiet --platform "linux/$arch" "$repository@$image" >/dev/null
    id=$(docker create --platform "linux/$arch" "$repository@$image")
    docker cp "$id:/usr/local/share/phantun-runtime/sbom.cdx.json" "$sboms/$arch.json"
    docker rm "$id" >/dev/null
    docker rmi "$repository@$image" >/dev/null
    cosign attest --yes "${key[@]}" --type cyclonedx --predicate "$sboms/$arch.json" "$repository@$digest"
  done
echo "$digest"
