#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, for the end-to-end
# suite (test/e2e) and for trying the operator: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and a kubelet with a containerd of
# its own, all built from Go modules or Debian packages, no Docker and no
# internet. See docs/operations.md and ../shared/notes/local-cluster.md.
#
#   hack/cluster.sh up      build what is missing (cached), start the cluster,
#                           load the images of hack/images.sh; idempotent
#   hack/cluster.sh env     print the environment to use it (KUBECONFIG, ...)
#   hack/cluster.sh load F  import image archives into the node's containerd
#   hack/cluster.sh down    stop everything and undo every change to the host
#
#   SLUICE_CLUSTER_DIR  state, certificates and logs (default /tmp/sluice-cluster)
#
# Network safety: pods live on a bridge of their own (sluice0, 10.244.0.0/24)
# that is never a gateway. Pods get no default route, only one to the service
# range through the node address; FORWARD rules drop anything from or to the
# pod range that does not stay on the bridge, installed before any pod
# starts; ip_forward is left as found. So a pod can reach other pods, the
# node address (the API server, a broker the tests start there) and nothing
# else. `down` restores every host change: processes, mounts, network
# namespaces, cgroups, iptables chains, the bridge and the sysctls the
# kubelet sets.
#
# Needs root and the Debian packages containerd, runc,
# containernetworking-plugins, iptables and openssl.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

dir="${SLUICE_CLUSTER_DIR:-/tmp/sluice-cluster}"
k8s_version="${K8S_VERSION:-1.37.2}"
bridge=sluice0
node_ip=10.244.0.1
pod_cidr=10.244.0.0/24
service_cidr=10.96.0.0/24
api_service_ip=10.96.0.1
node=sluice-node
etcd_port=23790
sysctls=(kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward)

log() { echo "hack/cluster.sh: $*" >&2; }
die() { log "$*"; exit 1; }

kubectl() { "$bin/kubectl" --kubeconfig "$dir/admin.kubeconfig" "$@"; }

require() {
	[[ $(id -u) == 0 ]] || die "must run as root: it creates a bridge, iptables rules and mounts"
	local missing=()
	for cmd in containerd containerd-shim-runc-v2 runc ctr iptables ip openssl; do
		command -v "$cmd" >/dev/null || missing+=("$cmd")
	done
	[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback ]] || missing+=("CNI plugins in /usr/lib/cni")
	((${#missing[@]} == 0)) || die "missing ${missing[*]}: apt-get install containerd runc containernetworking-plugins iptables openssl"
}

# start runs a daemon in a session of its own, logging to logs/NAME.log, and
# records its PID.
start() {
	local name=$1
	shift
	setsid "$@" >"$dir/logs/$name.log" 2>&1 </dev/null &
	echo $! >"$dir/pids/$name"
}

running() { [[ -f "$dir/pids/$1" ]] && kill -0 "$(cat "$dir/pids/$1")" 2>/dev/null; }

# stop ends a daemon: SIGTERM, then SIGKILL after a grace period.
stop() {
	local name=$1 pid
	[[ -f "$dir/pids/$name" ]] || return 0
	pid=$(cat "$dir/pids/$name")
	if kill -TERM "$pid" 2>/dev/null; then
		for _ in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$dir/pids/$name"
}

# wait_for runs a check until it passes or the timeout (seconds) passes.
wait_for() {
	local what=$1 timeout=$2
	shift 2
	for _ in $(seq $((timeout * 5))); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	die "$what did not come up within ${timeout}s; see $dir/logs"
}

# cert NAME CN [O] [SANS]: a key and a certificate signed by the cluster CA.
cert() {
	local name=$1 cn=$2 org=${3:-} sans=${4:-} subj="/CN=$2"
	[[ -n $org ]] && subj="/O=$org/CN=$cn"
	openssl genrsa -out "$dir/pki/$name.key" 2048 2>/dev/null
	openssl req -new -key "$dir/pki/$name.key" -subj "$subj" -out "$dir/pki/$name.csr" 2>/dev/null
	{
		echo "basicConstraints=CA:FALSE"
		echo "keyUsage=digitalSignature,keyEncipherment"
		echo "extendedKeyUsage=serverAuth,clientAuth"
		[[ -n $sans ]] && echo "subjectAltName=$sans"
	} >"$dir/pki/$name.ext"
	openssl x509 -req -in "$dir/pki/$name.csr" -CA "$dir/pki/ca.crt" -CAkey "$dir/pki/ca.key" -CAcreateserial \
		-days 30 -extfile "$dir/pki/$name.ext" -out "$dir/pki/$name.crt" 2>/dev/null
}

# kubeconfig NAME: a kubeconfig for the client certificate NAME.
kubeconfig() {
	cat >"$dir/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: sluice
    cluster: {server: "https://$node_ip:6443", certificate-authority: "$dir/pki/ca.crt"}
users:
  - name: $1
    user: {client-certificate: "$dir/pki/$1.crt", client-key: "$dir/pki/$1.key"}
contexts:
  - name: sluice
    context: {cluster: sluice, user: $1}
current-context: sluice
EOF
}

pki() {
	mkdir -p "$dir/pki"
	openssl genrsa -out "$dir/pki/ca.key" 2048 2>/dev/null
	openssl req -x509 -new -key "$dir/pki/ca.key" -subj "/CN=sluice-cluster-ca" -days 30 -out "$dir/pki/ca.crt" 2>/dev/null
	cert apiserver kube-apiserver "" "IP:$node_ip,IP:$api_service_ip,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost"
	cert admin admin system:masters
	cert controller-manager system:kube-controller-manager
	cert scheduler system:kube-scheduler
	cert kubelet "system:node:$node" system:nodes "IP:$node_ip,DNS:$node"
	cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
	openssl genrsa -out "$dir/pki/sa.key" 2048 2>/dev/null
	openssl rsa -in "$dir/pki/sa.key" -pubout -out "$dir/pki/sa.pub" 2>/dev/null
	for name in admin controller-manager scheduler kubelet; do
		kubeconfig "$name"
	done
}

# network creates the pod bridge with the node address and the rules that
# keep pods on it, before any pod starts.
network() {
	ip link add "$bridge" type bridge
	ip addr add "$node_ip/24" dev "$bridge"
	ip link set "$bridge" up
	iptables -N SLUICE-FORWARD
	iptables -A SLUICE-FORWARD -i "$bridge" -o "$bridge" -j ACCEPT
	# By interface, so that no spoofed source address gets out either; and
	# by address, whatever interface the pod range shows up on.
	iptables -A SLUICE-FORWARD -i "$bridge" -j DROP
	iptables -A SLUICE-FORWARD -o "$bridge" -j DROP
	iptables -A SLUICE-FORWARD -s "$pod_cidr" -j DROP
	iptables -A SLUICE-FORWARD -d "$pod_cidr" -j DROP
	iptables -I FORWARD 1 -j SLUICE-FORWARD
	# Empty: the end-to-end suite puts its faults here (a broker away, a
	# slow network) and takes them out; down removes whatever remains.
	iptables -N SLUICE-INPUT
	iptables -I INPUT 1 -i "$bridge" -j SLUICE-INPUT
	# Pods reach the API server at the kubernetes Service address, without
	# kube-proxy: one DNAT to the node address, which is local, so nothing
	# is forwarded.
	iptables -t nat -N SLUICE-SERVICES
	iptables -t nat -A SLUICE-SERVICES -s "$pod_cidr" -d "$api_service_ip/32" -p tcp --dport 443 -j DNAT --to-destination "$node_ip:6443"
	iptables -t nat -I PREROUTING 1 -j SLUICE-SERVICES
	mkdir -p "$dir/cni/net.d" "$dir/cni/ipam"
	cat >"$dir/cni/net.d/10-sluice.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "sluice",
  "plugins": [{
    "type": "bridge",
    "bridge": "$bridge",
    "isGateway": false,
    "isDefaultGateway": false,
    "ipMasq": false,
    "hairpinMode": true,
    "ipam": {
      "type": "host-local",
      "dataDir": "$dir/cni/ipam",
      "ranges": [[{"subnet": "$pod_cidr", "rangeStart": "10.244.0.10", "rangeEnd": "10.244.0.250"}]],
      "routes": [{"dst": "$service_cidr", "gw": "$node_ip"}]
    }
  }]
}
EOF
	echo "nameserver 127.0.0.1" >"$dir/resolv.conf" # for pods with dnsPolicy Default
}

control_plane() {
	start etcd "$bin/etcd" --name default --data-dir "$dir/etcd" \
		--listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
		--listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
		--initial-cluster default=http://127.0.0.1:23800 --listen-metrics-urls http://127.0.0.1:23810
	wait_for etcd 30 curl -fsS "http://127.0.0.1:$etcd_port/health"
	start kube-apiserver "$bin/kube-apiserver" \
		--etcd-servers "http://127.0.0.1:$etcd_port" \
		--bind-address "$node_ip" --advertise-address "$node_ip" --secure-port 6443 \
		--service-cluster-ip-range "$service_cidr" \
		--client-ca-file "$dir/pki/ca.crt" \
		--tls-cert-file "$dir/pki/apiserver.crt" --tls-private-key-file "$dir/pki/apiserver.key" \
		--kubelet-client-certificate "$dir/pki/apiserver-kubelet-client.crt" --kubelet-client-key "$dir/pki/apiserver-kubelet-client.key" \
		--kubelet-certificate-authority "$dir/pki/ca.crt" --kubelet-preferred-address-types InternalIP \
		--service-account-key-file "$dir/pki/sa.pub" --service-account-signing-key-file "$dir/pki/sa.key" \
		--service-account-issuer https://kubernetes.default.svc.cluster.local \
		--authorization-mode Node,RBAC --allow-privileged \
		--enable-aggregator-routing
	wait_for kube-apiserver 60 curl -fsS --cacert "$dir/pki/ca.crt" --cert "$dir/pki/admin.crt" --key "$dir/pki/admin.key" "https://$node_ip:6443/readyz"
	start kube-controller-manager "$bin/kube-controller-manager" \
		--kubeconfig "$dir/controller-manager.kubeconfig" \
		--authentication-kubeconfig "$dir/controller-manager.kubeconfig" --authorization-kubeconfig "$dir/controller-manager.kubeconfig" \
		--bind-address 127.0.0.1 --secure-port 10257 --leader-elect=false \
		--cluster-signing-cert-file "$dir/pki/ca.crt" --cluster-signing-key-file "$dir/pki/ca.key" \
		--root-ca-file "$dir/pki/ca.crt" --service-account-private-key-file "$dir/pki/sa.key" \
		--use-service-account-credentials --service-cluster-ip-range "$service_cidr"
	start kube-scheduler "$bin/kube-scheduler" \
		--kubeconfig "$dir/scheduler.kubeconfig" \
		--authentication-kubeconfig "$dir/scheduler.kubeconfig" --authorization-kubeconfig "$dir/scheduler.kubeconfig" \
		--bind-address 127.0.0.1 --secure-port 10259 --leader-elect=false
}

containerd_up() {
	mkdir -p "$dir/containerd"
	cat >"$dir/containerd/config.toml" <<EOF
version = 2
root = "$dir/containerd/root"
state = "$dir/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$dir/containerd/containerd.sock"
[ttrpc]
  address = "$dir/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "sluice.local/pause:dev"
  # This machine withholds CAP_SYS_RESOURCE: nothing may lower oom_score_adj.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$dir/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni/net.d"
EOF
	start containerd containerd --config "$dir/containerd/config.toml"
	wait_for containerd 30 ctr --address "$dir/containerd/containerd.sock" version
}

load() {
	local archive
	for archive in "$@"; do
		ctr --address "$dir/containerd/containerd.sock" -n k8s.io images import "$archive" >/dev/null
		log "loaded $(basename "$archive")"
	done
}

kubelet_up() {
	mkdir -p "$dir/kubelet" "$dir/pod-logs"
	cat >"$dir/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$dir/pki/ca.crt"}
authorization: {mode: Webhook}
address: "$node_ip"
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: "$dir/pki/kubelet.crt"
tlsPrivateKeyFile: "$dir/pki/kubelet.key"
containerRuntimeEndpoint: "unix://$dir/containerd/containerd.sock"
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
resolvConf: "$dir/resolv.conf"
clusterDomain: cluster.local
# No DNS server: pods resolve through their own loopback, so no lookup leaves them.
clusterDNS: ["127.0.0.1"]
podLogsDir: "$dir/pod-logs"
serializeImagePulls: false
# A small disk must not evict pods, nor delete images that cannot be pulled again.
evictionHard: {nodefs.available: "1%", imagefs.available: "1%", memory.available: "50Mi"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF
	start kubelet "$bin/kubelet" --config "$dir/kubelet.yaml" --kubeconfig "$dir/kubelet.kubeconfig" \
		--root-dir "$dir/kubelet" --cert-dir "$dir/kubelet/pki" --node-ip "$node_ip" --hostname-override "$node" --v=1
	wait_for "the node" 120 node_ready
	wait_for "the default service account" 60 kubectl -n default get serviceaccount default
}

node_ready() {
	[[ $(kubectl get node "$node" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}') == True ]]
}

healthy() {
	running kube-apiserver && running kubelet && running containerd && node_ready
}

up() {
	require
	bin="$(hack/kubernetes.sh)"
	images="$(hack/images.sh)"
	if [[ -d $dir ]] && healthy; then
		load "$images"/*.tar
		log "already running"
		env_out
		return
	fi
	[[ ! -d $dir ]] || die "$dir exists but the cluster is not healthy: run hack/cluster.sh down first"
	if ip link show "$bridge" >/dev/null 2>&1; then
		die "a link named $bridge exists: a cluster of another directory is running, or a teardown failed"
	fi
	mkdir -p "$dir/logs" "$dir/pids"
	touch "$dir/.sluice-cluster" # down removes only a directory up made
	echo "$bin" >"$dir/bin"
	# What the kubelet changes, to restore it.
	for s in "${sysctls[@]}"; do
		echo "$s=$(sysctl -n "$s")"
	done >"$dir/sysctls"
	ls /run/netns 2>/dev/null >"$dir/netns-before" || true
	nft list tables 2>/dev/null >"$dir/nft-before" || true
	kube_chains >"$dir/kube-chains-before"
	[[ -e /run/containerd ]] && touch "$dir/run-containerd-before"
	# Whatever stops the way up, a failed step or an interrupt, tears down.
	trap 'log "bringing the cluster up failed; tearing down"; down; exit 1' EXIT
	trap 'exit 130' INT TERM
	network
	pki
	control_plane
	containerd_up
	load "$images"/*.tar
	kubelet_up
	trap - EXIT INT TERM
	log "cluster up: node $node at $node_ip"
	env_out
}

env_out() {
	echo "export KUBECONFIG=$dir/admin.kubeconfig"
	echo "export SLUICE_NODE_IP=$node_ip"
	echo "export SLUICE_CLUSTER_DIR=$dir"
	echo "export SLUICE_POD_CIDR=$pod_cidr"
	echo "export PATH=$(cat "$dir/bin"):\$PATH"
}

# kube_chains lists the KUBE- chains of the host, as tool:table:chain.
kube_chains() {
	local tool table
	for tool in iptables ip6tables; do
		command -v "$tool" >/dev/null || continue
		for table in filter nat mangle; do
			"$tool" -t "$table" -S 2>/dev/null | awk -v p="$tool:$table:" '/^-N KUBE-/ {print p $2}'
		done
	done
}

# down undoes up in reverse, whatever state a failed up or test left.
down() {
	trap - EXIT INT TERM
	set +e
	[[ -d $dir ]] || { log "no cluster in $dir"; return 0; }
	[[ -f $dir/.sluice-cluster ]] || { log "$dir was not made by hack/cluster.sh up: not touching it"; return 1; }
	bin="$(cat "$dir/bin" 2>/dev/null || hack/kubernetes.sh)"
	# Nothing recreates pods once the controllers are gone; deleting them
	# through the API has the kubelet stop their sandboxes, which releases
	# their addresses and veths through CNI.
	stop kube-controller-manager
	stop kube-scheduler
	if running kube-apiserver && running kubelet; then
		kubectl delete pods --all --all-namespaces --grace-period=1 --wait=false >/dev/null 2>&1
		for _ in $(seq 150); do
			[[ -z $(kubectl get pods --all-namespaces -o name 2>/dev/null) && -z $(ip -o link show master "$bridge" 2>/dev/null) ]] && break
			sleep 0.2
		done
	fi
	stop kubelet
	# Containers left over: kill them, then their shims.
	local runc_root="$dir/containerd/runc/k8s.io" id
	if [[ -d $runc_root ]]; then
		for id in $(runc --root "$runc_root" list -q 2>/dev/null); do
			runc --root "$runc_root" kill "$id" KILL 2>/dev/null
			runc --root "$runc_root" delete --force "$id" 2>/dev/null
		done
	fi
	pkill -KILL -f "containerd-shim-runc-v2 .*-address $dir/containerd/containerd.sock" 2>/dev/null
	stop containerd
	stop kube-apiserver
	stop etcd
	# Mounts under the state directory (the kubelet's bind mount of its root,
	# volumes, overlays), deepest first, and the network namespaces CNI made.
	local m
	for m in $(awk -v d="$dir" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r); do
		umount "$m" 2>/dev/null || umount -l "$m"
	done
	# (A step whose record of the host before up is missing is skipped:
	# without it, what up added cannot be told from what was there.)
	if [[ -f $dir/netns-before ]]; then
		for m in $(ls /run/netns 2>/dev/null); do
			if ! grep -qx "$m" "$dir/netns-before"; then
				umount "/run/netns/$m" 2>/dev/null
				rm -f "/run/netns/$m"
			fi
		done
	fi
	# The kubelet's cgroups, deepest first.
	local c
	for c in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods.slice /sys/fs/cgroup/kubepods; do
		[[ -d $c ]] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	# iptables: ours, and the kubelet's KUBE- chains with the jumps to them.
	iptables -D INPUT -i "$bridge" -j SLUICE-INPUT 2>/dev/null
	iptables -F SLUICE-INPUT 2>/dev/null
	iptables -X SLUICE-INPUT 2>/dev/null
	iptables -D FORWARD -j SLUICE-FORWARD 2>/dev/null
	iptables -F SLUICE-FORWARD 2>/dev/null
	iptables -X SLUICE-FORWARD 2>/dev/null
	iptables -t nat -D PREROUTING -j SLUICE-SERVICES 2>/dev/null
	iptables -t nat -F SLUICE-SERVICES 2>/dev/null
	iptables -t nat -X SLUICE-SERVICES 2>/dev/null
	local entry tool table chain rule
	if [[ -f $dir/kube-chains-before ]]; then
		for entry in $(kube_chains); do
			grep -qx "$entry" "$dir/kube-chains-before" && continue
			IFS=: read -r tool table chain <<<"$entry"
			"$tool" -t "$table" -S 2>/dev/null | grep -E -- "-j $chain( |\$)" | grep '^-A ' | sed 's/^-A /-D /' | while read -r rule; do
				eval "$tool -t $table $rule" 2>/dev/null
			done
			"$tool" -t "$table" -F "$chain" 2>/dev/null
		done
		for entry in $(kube_chains); do
			grep -qx "$entry" "$dir/kube-chains-before" && continue
			IFS=: read -r tool table chain <<<"$entry"
			"$tool" -t "$table" -X "$chain" 2>/dev/null
		done
	fi
	# Tables that iptables (over nftables) or the kubelet created.
	if command -v nft >/dev/null && [[ -f $dir/nft-before ]]; then
		nft list tables 2>/dev/null | while read -r _ family name; do
			grep -qx "table $family $name" "$dir/nft-before" || nft delete table "$family" "$name" 2>/dev/null
		done
	fi
	ip link del "$bridge" 2>/dev/null
	# The shims' socket directory, unless a containerd of the system had it.
	[[ -e $dir/run-containerd-before ]] || find /run/containerd -depth -type d -empty -delete 2>/dev/null
	if [[ -f $dir/sysctls ]]; then
		while IFS= read -r s; do
			sysctl -qw "$s" >/dev/null
		done <"$dir/sysctls"
	fi
	if [[ -n ${SLUICE_CLUSTER_LOGS:-} ]]; then
		mkdir -p "$SLUICE_CLUSTER_LOGS" && cp -r "$dir/logs/." "$SLUICE_CLUSTER_LOGS/"
	fi
	rm -rf --one-file-system "$dir"
	log "cluster down; the host is as it was"
	return 0
}

case "${1:-}" in
up) up ;;
down) down ;;
env)
	[[ -f $dir/bin ]] || die "no cluster in $dir: hack/cluster.sh up"
	env_out
	;;
load)
	shift
	load "$@"
	;;
*) die "usage: hack/cluster.sh up|down|env|load ARCHIVE..." ;;
esac
