# Sourced by build-images.sh and build-python-image.sh: one image build.
#   onvm_image_build NF VERSION CONTEXT [docker build options...]
# tags onvm/NF:VERSION and onvm/NF:latest; prints "onvm/NF:VERSION built"
# only when the image changed (Ansible reports changed on it), "unchanged"
# otherwise; on failure prints docker's output and exits 1.
onvm_image_build() {
	local nf=$1 version=$2 ctx=$3 before after out
	shift 3
	before=$(docker image inspect -f '{{.Id}}' "onvm/$nf:$version" 2>/dev/null || true)
	if ! out=$(docker build -q "$@" -t "onvm/$nf:$version" -t "onvm/$nf:latest" "$ctx" 2>&1); then
		echo "$out" >&2
		exit 1
	fi
	after=$(docker image inspect -f '{{.Id}}' "onvm/$nf:$version")
	if [ "$before" = "$after" ]; then
		echo "onvm/$nf:$version unchanged"
	else
		echo "onvm/$nf:$version built"
	fi
}
