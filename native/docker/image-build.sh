# Sourced by build-images.sh and build-python-image.sh: one image build.
#   onvm_image_build NF VERSION CONTEXT [docker build options...]
# tags onvm/NF:VERSION and onvm/NF:latest; prints "onvm/NF:VERSION built"
# only when the image changed (Ansible reports changed on it), "unchanged"
# otherwise; on failure prints docker's output and exits 1.  An image whose
# label org.onvm.context is the digest of this context and these options is
# left as it is, without asking docker to build (a deploy re-run builds
# nothing: 1.5 s an image saved).
onvm_image_build() {
	local nf=$1 version=$2 ctx=$3 before after out digest
	shift 3
	digest=$( (cd "$ctx" && find . -type f -print0 | sort -z | xargs -0 sha256sum; echo "$*") |
		sha256sum | cut -c1-64)
	before=$(docker image inspect -f '{{.Id}} {{index .Config.Labels "org.onvm.context"}}' \
		"onvm/$nf:$version" 2>/dev/null || true)
	if [ "${before#* }" = "$digest" ] &&
		[ "$(docker image inspect -f '{{.Id}}' "onvm/$nf:latest" 2>/dev/null)" = "${before%% *}" ]; then
		echo "onvm/$nf:$version unchanged"
		return 0
	fi
	if ! out=$(docker build -q "$@" --label "org.onvm.context=$digest" -t "onvm/$nf:$version" \
		-t "onvm/$nf:latest" "$ctx" 2>&1); then
		echo "$out" >&2
		exit 1
	fi
	after=$(docker image inspect -f '{{.Id}}' "onvm/$nf:$version")
	if [ "${before%% *}" = "$after" ]; then
		echo "onvm/$nf:$version unchanged"
	else
		echo "onvm/$nf:$version built"
	fi
}
