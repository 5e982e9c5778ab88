// The POSIX shell run on the nodes over SSH, as pure string builders so they
// can be read in one place, syntax-checked and exercised by tests.
//
// Rules every script follows:
// - idempotent: it reads the current state first, so a re-run changes nothing;
// - secrets (join tokens, passwords, PEMs) arrive on stdin, never in the
//   command line, and the commands that would print them write to /dev/null;
// - stdout carries only the one value the program uses (a node id, a PEM).
// Every interpolated value is either validated by the config schema to a safe
// alphabet or passed through `shellQuote`.

/** Single-quotes a value for POSIX sh. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Runs a script as root: directly for root, through passwordless sudo otherwise. */
export function asRoot(script: string, user: string): string {
  return user === "root" ? script : `sudo -n sh -c ${shellQuote(script)}`;
}

const SWARM_STATE = `docker info --format '{{.Swarm.LocalNodeState}}'`;
const NODE_ID = `docker info --format '{{.Swarm.NodeID}}'`;
const CONTROL_AVAILABLE = `docker info --format '{{.Swarm.ControlAvailable}}'`;
/** Reads one line of stdin into a variable; `|| true` accepts a last line without a newline (and empty input, checked after). */
const readLine = (variable: string) => `IFS= read -r ${variable} || true`;

/** Where Swarm takes overlay subnets from; only read by `swarm init`. */
export interface AddressPool {
  cidr: string;
  maskLength?: number;
}

/**
 * On the manager: `swarm init` only when the node is not already in a swarm. Prints the node id.
 * The address pool applies to a new swarm only (Docker cannot change it later).
 */
export function swarmInitScript(advertiseAddr: string, pool?: AddressPool): string {
  const addr = shellQuote(advertiseAddr);
  const poolArgs =
    pool === undefined
      ? ""
      : ` --default-addr-pool ${shellQuote(pool.cidr)}` +
        (pool.maskLength === undefined ? "" : ` --default-addr-pool-mask-length ${pool.maskLength}`);
  return [
    "set -eu",
    `state=$(${SWARM_STATE})`,
    `if [ "$state" != active ]; then`,
    // `swarm init` prints a join command with the worker token: never let it reach the logs.
    `  docker swarm init --advertise-addr ${addr}${poolArgs} >/dev/null`,
    "fi",
    `if [ "$(${CONTROL_AVAILABLE})" != true ]; then`,
    `  echo "node ${advertiseAddr} is in a swarm but is not a manager: make it leave that swarm first" >&2`,
    "  exit 1",
    "fi",
    NODE_ID,
  ].join("\n");
}

/** On a manager: the swarm's dispatcher heartbeat period, as Docker writes it (e.g. `2s`). */
export const HEARTBEAT_PERIOD = `docker info --format '{{.Swarm.Cluster.Spec.Dispatcher.HeartbeatPeriod}}'`;

/**
 * On a manager: sets how often every node reports to the swarm's leader
 * (`docker swarm update --dispatcher-heartbeat`), unless it already is that.
 * Prints the period in force, as Docker writes it (e.g. `2s`).
 */
export function dispatcherHeartbeatScript(seconds: number): string {
  if (!Number.isInteger(seconds) || seconds < 1) throw new RangeError(`the dispatcher heartbeat must be a whole number of seconds ≥ 1, got ${seconds}`);
  return [
    "set -eu",
    `if [ "$(${HEARTBEAT_PERIOD})" != ${seconds}s ]; then`,
    `  docker swarm update --dispatcher-heartbeat ${seconds}s >/dev/null`,
    "fi",
    HEARTBEAT_PERIOD,
  ].join("\n");
}

/** On the manager: the join token for a role, alone on stdout (captured as a secret output). */
export function joinTokenScript(role: "worker" | "manager"): string {
  return `set -eu\ndocker swarm join-token -q ${role}`;
}

/**
 * On a worker node: join with the token from stdin unless already in a swarm.
 * Prints the node id (nodeLabelScript then checks it belongs to this swarm).
 */
export function swarmJoinScript(advertiseAddr: string, managerAddr: string): string {
  return [
    "set -eu",
    readLine("token"),
    `if [ -z "$token" ]; then echo "no join token on stdin" >&2; exit 1; fi`,
    `if [ "$(${SWARM_STATE})" != active ]; then`,
    `  docker swarm join --advertise-addr ${shellQuote(advertiseAddr)} --token "$token" ${shellQuote(`${managerAddr}:2377`)} >/dev/null`,
    "fi",
    NODE_ID,
  ].join("\n");
}

/**
 * On the primary, whenever the configured nodes change and before any node
 * joins: every manager that is down and no longer configured (its VM lost) is
 * demoted, so it is out of Raft before a manager joins in its place, and the
 * workers are told the managers that are left. Then prints every node id the
 * swarm knows, one a line (the joins read them); progress goes to stderr.
 */
export function knownNodeIdsScript(configuredNames: readonly string[], waitSeconds = 60, attempts = 30): string {
  return [
    "set -eu",
    RETRY(attempts),
    ...forEachUnconfiguredNode(configuredNames),
    `  [ "$(docker node inspect --format '{{.Spec.Role}}' "$id")" = manager ] || continue`,
    `  [ "$(docker node inspect --format '{{.Status.State}}' "$id")" = down ] || continue`,
    '  retry docker node demote "$id"',
    ...waitOrFail(
      "  ",
      `[ -z "$(docker node inspect --format '{{if .ManagerStatus}}in raft{{end}}' "$id")" ]`,
      waitSeconds,
      "demoted $name (down, no longer configured), but Swarm still lists it in Raft after " + waitSeconds + " s",
    ),
    '  echo "demoted $name (down, no longer configured): out of Raft before a manager joins" >&2',
    "done",
    "docker node ls -q",
  ].join("\n");
}

/** Shell function `retry CMD…`: runs CMD until Swarm takes it, once a second; after `attempts` refusals, once more with its error shown (and fatal under set -e). */
const RETRY = (attempts: number) =>
  `retry() { i=0; until "$@" >/dev/null 2>&1; do i=$((i + 1)); if [ "$i" -ge ${attempts} ]; then "$@" >/dev/null; fi; sleep 1; done; }`;

/**
 * On a node of a multi-manager stack (the token for its `role`, then the ids
 * of every node the swarm knows, one a line, on stdin): joins the swarm unless
 * it is an active member of it. A node this swarm removed earlier is left in a
 * stale state: `pending` or `error` when it was down at its removal, or
 * `active` with an id the swarm no longer knows when it was up (`docker node rm
 * --force` never tells the node); it leaves that state first.
 *
 * A worker whose role is now manager is promoted by joining again, as a
 * manager, through `managerAddr` (the primary, which this deploy just reached);
 * a manager then removes every worker entry labelled with its name (the one it
 * just left, or one a failed run left). `docker node promote` is not used:
 * the promoted node joins Raft through the manager it first joined through
 * (swarmkit node.go, runManager: JoinAddr) until its Docker restarts, and if
 * that VM is the one lost, its manager stops for good ("manager stopped: can't
 * initialize raft node"; e2e run 17). The cost: its tasks start again
 * elsewhere, as when a VM is lost. Prints the node id.
 */
export function swarmRejoinScript(advertiseAddr: string, managerAddr: string, node: { name: string; role: "manager" | "worker" }, attempts = 30): string {
  return [
    "set -eu",
    readLine("token"),
    `if [ -z "$token" ]; then echo "no join token on stdin" >&2; exit 1; fi`,
    // The rest of stdin: the node ids the primary listed (none when it could not list them).
    "known=$(cat)",
    `state=$(${SWARM_STATE})`,
    `problem=$(docker info --format '{{.Swarm.Error}}')`,
    `id=$(${NODE_ID})`,
    `if [ "$state" = active ] && [ -z "$problem" ] && [ -n "$known" ] && ! printf '%s\n' "$known" | grep -qxF "$id"; then`,
    `  problem="this swarm no longer knows node id $id (it was removed)"`,
    "fi",
    `if [ "$state" = pending ] || [ "$state" = error ] || { [ "$state" = active ] && [ -n "$problem" ]; }; then`,
    `  echo "leaving a stale swarm state ($state\${problem:+: $problem}) before joining" >&2`,
    "  docker swarm leave --force >/dev/null",
    `  state=$(${SWARM_STATE})`,
    "fi",
    ...(node.role === "manager"
      ? [
          `if [ "$state" = active ] && [ "$(${CONTROL_AVAILABLE})" != true ]; then`,
          `  echo "promoting this worker: joining again as a manager through ${managerAddr} (its tasks start again elsewhere)" >&2`,
          "  docker swarm leave --force >/dev/null",
          `  state=$(${SWARM_STATE})`,
          "fi",
        ]
      : []),
    `if [ "$state" != active ]; then`,
    joinLines(advertiseAddr, managerAddr),
    "fi",
    ...(node.role === "manager"
      ? [
          // Its entries as a worker (this run's, or one a failed run left): removed now that it can.
          `if [ "$(${CONTROL_AVAILABLE})" = true ]; then`,
          `  ${RETRY(attempts)}`,
          `  self=$(${NODE_ID})`,
          "  for other in $(docker node ls -q); do",
          '    [ "$other" != "$self" ] || continue',
          `    [ "$(docker node inspect --format '{{index .Spec.Labels "${NODE_NAME_LABEL}"}} {{.Spec.Role}}' "$other")" = ${shellQuote(`${node.name} worker`)} ] || continue`,
          '    retry docker node rm --force "$other"',
          `    echo ${shellQuote(`removed an old worker entry of ${node.name} from the swarm`)} >&2`,
          "  done",
          "fi",
        ]
      : []),
    NODE_ID,
  ].join("\n");
}

/**
 * `docker swarm join` with the token in `$token` (multi-manager stacks).
 * Docker stops waiting after 20 s ("Timeout was reached before node joined.
 * The attempt to join the swarm will continue in the background"); a manager
 * joining while a lost manager is still a Raft member can take longer (e2e
 * run 10), so that answer is waited out, at most `waitSeconds`, until the node
 * is active. A manager's join that fails on Raft (its Raft could not start,
 * or the leader did not answer in time) leaves the half-made state and is
 * tried again, `tries` times in all. Any other failure (a wrong token, an
 * unreachable primary) fails at once with Docker's message.
 */
function joinLines(advertiseAddr: string, managerAddr: string, waitSeconds = 120, tries = 3): string {
  return [
    "  try=1",
    `  until out=$(docker swarm join --advertise-addr ${shellQuote(advertiseAddr)} --token "$token" ${shellQuote(`${managerAddr}:2377`)} 2>&1 >/dev/null); do`,
    '    case "$out" in',
    `      *"continue in the background"*) echo "the join takes longer than Docker waits; waiting for it (at most ${waitSeconds} s)" >&2; break ;;`,
    `      *"can't initialize raft node"*|*"context deadline exceeded"*|*"code = Unavailable"*)`,
    `        if [ "$try" -ge ${tries} ]; then printf '%s\\n' "$out" >&2; exit 1; fi`,
    `        printf 'join attempt %s of ${tries} failed: %s; leaving the half-made state, trying again in 5 s\\n' "$try" "$out" >&2`,
    "        docker swarm leave --force >/dev/null 2>&1 || true",
    "        sleep 5",
    "        try=$((try + 1)) ;;",
    `      *) printf '%s\\n' "$out" >&2; exit 1 ;;`,
    "    esac",
    "  done",
    ...waitOrFail(
      "  ",
      `[ "$(${SWARM_STATE})" = active ]`,
      waitSeconds,
      `node ${advertiseAddr} did not join within ${waitSeconds} s: $(docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.Error}}')`,
      2,
    ),
  ].join("\n");
}

/**
 * Shell lines (each starting with `indent`): test `condition` every
 * `stepSeconds` until it holds; past `seconds`, print `failure` (double-quoted,
 * so it may use $(…) and variables) to stderr and exit 1. Leaves the seconds
 * waited in `$waited`.
 */
function waitOrFail(indent: string, condition: string, seconds: number, failure: string, stepSeconds = 1): string[] {
  return [
    "waited=0",
    `until ${condition}; do`,
    `  if [ "$waited" -ge ${seconds} ]; then`,
    `    echo "${failure}" >&2`,
    "    exit 1",
    "  fi",
    `  sleep ${stepSeconds}`,
    `  waited=$((waited + ${stepSeconds}))`,
    "done",
  ].map((line) => `${indent}${line}`);
}

/** On a node being removed (runs after the manager drained and removed it): leave if still in the swarm. */
export function swarmLeaveScript(): string {
  return [`if [ "$(${SWARM_STATE})" = active ]; then`, "  docker swarm leave --force >/dev/null", "fi"].join("\n");
}

/** The label that records which labels this program manages on a node, so removed ones can be dropped. */
export const MANAGED_LABELS_LABEL = "ai-swarm.labels";

/** The label that names a node as the stack config does (nodes[].name). */
export const NODE_NAME_LABEL = "ai-swarm.node";

/**
 * On the manager: set a node's labels from config. Labels this program set
 * before and that are no longer in config are removed; labels set by anyone
 * else are left alone. Prints the node id.
 */
export function nodeLabelScript(nodeId: string, labels: Record<string, string>, nodeName: string): string {
  const keys = Object.keys(labels).sort();
  const adds = [`--label-add ${shellQuote(`${MANAGED_LABELS_LABEL}=${keys.join(",")}`)}`]
    .concat(keys.map((key) => `--label-add ${shellQuote(`${key}=${labels[key] ?? ""}`)}`))
    .join(" ");
  return [
    "set -eu",
    `id=${shellQuote(nodeId.trim())}`,
    // The join script leaves a node that is already in a swarm alone; if that
    // is some other swarm, this manager does not know its id: say so plainly.
    `if ! docker node inspect "$id" >/dev/null 2>&1; then`,
    `  echo ${shellQuote(`${nodeName} is in another swarm (its node id is not known to this manager): run 'docker swarm leave --force' on it, then deploy again`)} >&2`,
    "  exit 1",
    "fi",
    `previous=$(docker node inspect --format '{{index .Spec.Labels "${MANAGED_LABELS_LABEL}"}}' "$id")`,
    `removals=""`,
    `for key in $(printf '%s' "$previous" | tr ',' ' '); do`,
    `  case ${shellQuote(` ${keys.join(" ")} `)} in *" $key "*) ;; *) removals="$removals --label-rm $key" ;; esac`,
    "done",
    // $removals is split on purpose: it holds label keys this program wrote (safe alphabet).
    `docker node update $removals ${adds} "$id" >/dev/null`,
    `echo "$id"`,
  ].join("\n");
}

/**
 * On the manager, when a node leaves the config: drain it, wait (bounded) for
 * its tasks to stop, then remove it from the swarm. The node's own resource
 * runs `swarm leave` right after.
 */
export function drainAndRemoveScript(nodeId: string, waitSeconds = 90): string {
  return [
    "set -u",
    `id=${shellQuote(nodeId.trim())}`,
    `docker node inspect "$id" >/dev/null 2>&1 || exit 0`,
    `docker node update --availability drain "$id" >/dev/null`,
    "i=0",
    `while [ "$i" -lt ${waitSeconds} ] && docker node ps "$id" --format '{{.CurrentState}}' | grep -q '^Running'; do`,
    "  i=$((i + 1)); sleep 1",
    "done",
    `docker node rm --force "$id" >/dev/null`,
  ].join("\n");
}

/** The registry's files on the manager: CA (whose key never leaves this directory), server cert, htpasswd. */
export const REGISTRY_DIR = "/etc/ai-swarm/registry";
/** The web page's certificate and key on the manager (signed by the same CA). */
export const WEB_TLS_DIR = "/etc/ai-swarm/web";
/** The etcd members' and clients' certificates on a manager (signed by the same CA). */
export const ETCD_TLS_DIR = "/etc/ai-swarm/etcd";

const NEED_OPENSSL = `command -v openssl >/dev/null || { echo "openssl is required on the manager (apt-get install openssl)" >&2; exit 1; }`;

/** The CA in "$ca", made once (EC P-256, 10 years); its key never leaves that directory. */
function ensureCaLines(): string[] {
  return [
    `if [ ! -s "$ca/ca.key" ] || [ ! -s "$ca/ca.crt" ]; then`,
    `  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -sha256 -days 3650 -nodes -subj '/CN=ai-swarm registry CA' -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' -keyout "$ca/ca.key" -out "$ca/ca.crt"`,
    `  rm -f "$out/$name.crt"`,
    "fi",
  ];
}

/**
 * A server certificate "$out/$name.crt" (+ .key) for "$san", signed by the CA in "$ca";
 * (re)issued only when missing or when the names changed (kept in "$sanfile").
 */
function issueCertLines(commonName: string, usage = "serverAuth"): string[] {
  return [
    `if [ ! -s "$out/$name.crt" ] || [ "$(cat "$sanfile" 2>/dev/null || true)" != "$san" ]; then`,
    `  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj ${shellQuote(`/CN=${commonName}`)} -keyout "$out/$name.key" -out "$out/$name.csr"`,
    `  printf 'subjectAltName=%s\\nextendedKeyUsage=${usage}\\n' "$san" > "$out/$name.ext"`,
    `  openssl x509 -req -in "$out/$name.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -CAcreateserial -days 825 -sha256 -extfile "$out/$name.ext" -out "$out/$name.crt"`,
    `  printf '%s\\n' "$san" > "$sanfile"`,
    `  rm -f "$out/$name.csr" "$out/$name.ext"`,
    "fi",
  ];
}

/**
 * On the manager: a CA made once, and a server certificate for the manager's
 * address signed by it (remade only if missing or the address changed).
 * Prints the CA certificate, which the program installs on every node.
 */
export function registryTlsScript(subjectAltName: string, commonName: string, dir = REGISTRY_DIR): string {
  return [
    "set -eu",
    NEED_OPENSSL,
    `ca=${shellQuote(dir)}`,
    `out="$ca/certs"`,
    "name=registry",
    `sanfile="$out/san"`,
    `san=${shellQuote(subjectAltName)}`,
    "umask 077",
    `mkdir -p "$ca/certs" "$ca/auth"`,
    `chmod 755 "$ca" "$ca/certs" "$ca/auth"`,
    ...ensureCaLines(),
    ...issueCertLines(commonName),
    `chmod 644 "$ca/ca.crt" "$out/registry.crt" "$out/san"`,
    `cat "$ca/ca.crt"`,
  ].join("\n");
}

/**
 * A certificate "$out/<name>.crt" (+ .key) for `subjectAltNames` (e.g.
 * "IP:192.0.2.11,DNS:chat.example"), signed by the stack's CA in `caDir`
 * (made here if it does not exist yet), re-issued only when the names change.
 * Prints the certificate, then the key. `name` is a plain file name
 * (letters, digits, "-").
 */
function signedCertScript(name: string, subjectAltNames: string, commonName: string, usage: string, caDir: string, dir: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9-]*$/.test(name)) throw new Error(`certificate name "${name}": letters, digits and "-" only`);
  return [
    "set -eu",
    NEED_OPENSSL,
    `ca=${shellQuote(caDir)}`,
    `out=${shellQuote(dir)}`,
    `name=${name}`,
    `sanfile="$out/${name}.san"`,
    `san=${shellQuote(subjectAltNames)}`,
    "umask 077",
    `mkdir -p "$ca" "$out"`,
    ...ensureCaLines(),
    ...issueCertLines(commonName, usage),
    `cat "$out/${name}.crt" "$out/${name}.key"`,
  ].join("\n");
}

/**
 * On the manager: the web page's certificate (serverAuth), kept in
 * WEB_TLS_DIR. The program makes the key a Docker secret (the stdout is a secret).
 */
export function webTlsScript(subjectAltNames: string, commonName: string, caDir = REGISTRY_DIR, dir = WEB_TLS_DIR): string {
  return signedCertScript("web", subjectAltNames, commonName, "serverAuth", caDir, dir);
}

/**
 * A certificate for one etcd member or client `name` (e.g. "etcd-manager-1",
 * "master"), for both sides of a TLS connection (serverAuth and clientAuth:
 * members are clients of each other, and etcd checks client certificates),
 * kept in ETCD_TLS_DIR.
 */
export function etcdTlsScript(name: string, subjectAltNames: string, caDir = REGISTRY_DIR, dir = ETCD_TLS_DIR): string {
  return signedCertScript(name, subjectAltNames, name, "serverAuth,clientAuth", caDir, dir);
}

/**
 * On the primary: prints the stack's CA, key then certificate, for the copy
 * every other manager keeps (installCaScript). Run with logging off; the
 * program holds its stdout as a secret.
 */
export function readCaScript(dir = REGISTRY_DIR): string {
  return ["set -eu", `ca=${shellQuote(dir)}`, `cat "$ca/ca.key" "$ca/ca.crt"`].join("\n");
}

/**
 * On a manager: installs the stack's CA (key then certificate, on stdin) in
 * `dir`, where the CA-signing scripts look for it, so that this manager, once
 * it is the primary, signs with the same CA and nothing that trusts the CA
 * needs anything new. If it held another CA, the certificates issued with that
 * one (`*.crt` in `issuedDirs`) are removed, so they are issued again.
 */
export function installCaScript(dir = REGISTRY_DIR, issuedDirs: readonly string[] = [`${REGISTRY_DIR}/certs`, WEB_TLS_DIR, ETCD_TLS_DIR]): string {
  return [
    "set -eu",
    NEED_OPENSSL,
    `ca=${shellQuote(dir)}`,
    "umask 077",
    `mkdir -p "$ca"`,
    `chmod 755 "$ca"`,
    `tmp="$(mktemp -d "$ca/.install.XXXXXX")"`,
    `trap 'rm -rf "$tmp"' EXIT`,
    `cat > "$tmp/in.pem"`,
    `openssl pkey -in "$tmp/in.pem" -out "$tmp/ca.key" || { echo "installing the stack CA: no private key on stdin" >&2; exit 1; }`,
    `openssl x509 -in "$tmp/in.pem" -out "$tmp/ca.crt" || { echo "installing the stack CA: no certificate on stdin" >&2; exit 1; }`,
    `if ! cmp -s "$tmp/ca.crt" "$ca/ca.crt"; then`,
    ...issuedDirs.map((issued) => `  rm -f ${shellQuote(issued)}/*.crt`),
    "fi",
    `chmod 600 "$tmp/ca.key"`,
    `chmod 644 "$tmp/ca.crt"`,
    `mv -f "$tmp/ca.key" "$ca/ca.key"`,
    `mv -f "$tmp/ca.crt" "$ca/ca.crt"`,
  ].join("\n");
}

/** Writes stdin to a file atomically with the given mode (used for htpasswd and CA certificates). */
export function writeStdinToFileScript(filePath: string, mode: string): string {
  const file = shellQuote(filePath);
  const tmp = shellQuote(`${filePath}.tmp`);
  return [
    "set -eu",
    `mkdir -p "$(dirname ${file})"`,
    `cat > ${tmp}`,
    `chmod ${mode} ${tmp}`,
    `mv -f ${tmp} ${file}`,
  ].join("\n");
}

/** Where Docker looks for a registry's CA: /etc/docker/certs.d/<host:port>/ca.crt. */
export function registryCaPath(registryAddress: string): string {
  return `/etc/docker/certs.d/${registryAddress}/ca.crt`;
}

export function removeRegistryCaScript(registryAddress: string): string {
  return `rm -rf ${shellQuote(`/etc/docker/certs.d/${registryAddress}`)}`;
}

/**
 * On the manager: wait until the registry answers a real login over TLS
 * (which proves the CA, the certificate and the htpasswd file all work). The
 * password comes on stdin; the login lands in a throw-away DOCKER_CONFIG.
 */
export function registryReadyScript(registryAddress: string, username: string, attempts = 60, delaySeconds = 2): string {
  const address = shellQuote(registryAddress);
  return [
    "set -eu",
    readLine("password"),
    `if [ -z "$password" ]; then echo "no registry password on stdin" >&2; exit 1; fi`,
    `cfg=$(mktemp -d)`,
    `trap 'rm -rf "$cfg"' EXIT`,
    "i=0",
    `until printf '%s' "$password" | DOCKER_CONFIG="$cfg" docker login --username ${shellQuote(username)} --password-stdin ${address} >/dev/null 2>&1; do`,
    "  i=$((i + 1))",
    `  if [ "$i" -ge ${attempts} ]; then echo "registry ${registryAddress} did not accept a login within ${attempts * delaySeconds} s" >&2; exit 1; fi`,
    `  sleep ${delaySeconds}`,
    "done",
    `echo "registry ${registryAddress} ready"`,
  ].join("\n");
}

/**
 * On the manager, before services move: drain every node this program labelled
 * (NODE_NAME_LABEL) whose name is no longer in the config, so its replicas are
 * rescheduled now; removing it from the swarm happens when Pulumi deletes its
 * resources, after the update. Prints one line per node it drained.
 */
export function drainRemovedNodesScript(configuredNames: readonly string[]): string {
  return [
    "set -eu",
    ...forEachUnconfiguredNode(configuredNames),
    `  if [ "$(docker node inspect --format '{{.Spec.Availability}}' "$id")" != drain ]; then`,
    '    docker node update --availability drain "$id" >/dev/null',
    '    echo "drained $name: no longer in the stack config"',
    "  fi",
    "done",
  ].join("\n");
}

/** Reads the name this program gave node "$id" (NODE_NAME_LABEL) into "$name". */
const NODE_NAME_OF_ID = `name=$(docker node inspect --format '{{index .Spec.Labels "${NODE_NAME_LABEL}"}}' "$id")`;

/**
 * Shell lines that open a loop over every node this program labelled
 * (NODE_NAME_LABEL) whose name is not in `configuredNames`, with "$id" and
 * "$name" set; the caller adds the body (indented two spaces) and "done".
 */
function forEachUnconfiguredNode(configuredNames: readonly string[]): string[] {
  return [
    `keep=${shellQuote(` ${[...configuredNames].sort().join(" ")} `)}`,
    "for id in $(docker node ls -q); do",
    `  ${NODE_NAME_OF_ID}`,
    '  [ -n "$name" ] || continue',
    '  case "$keep" in *" $name "*) continue ;; esac',
  ];
}

/**
 * On the primary manager of a multi-manager stack, before services move:
 * removes from the swarm every node this program labelled (NODE_NAME_LABEL)
 * whose name is no longer in the config, one at a time: demote it if it is a
 * manager, drain it, wait (at most `waitSeconds`, not at all when the node is
 * down) for its tasks to stop, then `docker node rm --force`. It never dials
 * the node, so a node whose VM is gone is removed too. Prints one progress
 * line before and one after each node.
 */
export function removeNodesScript(configuredNames: readonly string[], waitSeconds = 60, attempts = 30): string {
  return [
    "set -eu",
    RETRY(attempts),
    ...forEachUnconfiguredNode(configuredNames),
    `  status=$(docker node inspect --format '{{.Status.State}}' "$id")`,
    '  echo "removing $name ($status)…"',
    `  if [ "$(docker node inspect --format '{{.Spec.Role}}' "$id")" = manager ]; then`,
    // Retried: right after a leader is lost, Swarm refuses changes until a new one is elected.
    '    retry docker node demote "$id"',
    '    echo "  demoted $name"',
    "  fi",
    // Right after a demote the node's spec version moves on: Swarm refuses the drain ("update out of sequence") until then.
    '  retry docker node update --availability drain "$id"',
    '  if [ "$status" != down ]; then',
    "    i=0",
    `    while [ "$i" -lt ${waitSeconds} ] && docker node ps "$id" --filter desired-state=running --format '{{.CurrentState}}' | grep -q '^Running'; do`,
    "      i=$((i + 1)); sleep 1",
    "    done",
    "  fi",
    // A demoted manager leaves Raft asynchronously: rm refuses it until then.
    '  retry docker node rm --force "$id"',
    '  echo "removed $name"',
    "done",
  ].join("\n");
}

/**
 * On the primary manager of a multi-manager stack, after every node joined:
 * demotes each node configured as a worker that is still a manager. Promotions
 * are the joins' (swarmRejoinScript joins a promoted worker again as a
 * manager); a configured manager that is not one here fails the deploy,
 * naming it. Prints one line per change.
 */
export function nodeRolesScript(nodes: readonly { name: string; role: "manager" | "worker" }[]): string {
  const names = (role: string) => shellQuote(` ${nodes.filter((node) => node.role === role).map((node) => node.name).sort().join(" ")} `);
  return [
    "set -eu",
    `managers=${names("manager")}`,
    `workers=${names("worker")}`,
    'demote=""',
    "for id in $(docker node ls -q); do",
    `  ${NODE_NAME_OF_ID}`,
    '  [ -n "$name" ] || continue',
    `  role=$(docker node inspect --format '{{.Spec.Role}}' "$id")`,
    '  case "$managers" in *" $name "*) if [ "$role" != manager ]; then echo "$name is configured as a manager but is a worker: its join (swarm-join-$name) did not make it one; see its output" >&2; exit 1; fi ;; esac',
    '  case "$workers" in *" $name "*) [ "$role" = worker ] || demote="$demote $id:$name" ;; esac',
    "done",
    RETRY(30),
    'for item in $demote; do retry docker node demote "${item%%:*}"; echo "demoted ${item#*:} to worker"; done',
  ].join("\n");
}

/**
 * On any node: pull every image reference it does not hold yet from the
 * private registry. The password comes on stdin; the login lands in a
 * throw-away DOCKER_CONFIG and is logged out and removed before the script
 * ends. A node that already holds every reference does not log in (so a re-run
 * needs no registry). Prints one line per reference.
 */
export function pullImagesScript(registryAddress: string, username: string, refs: readonly string[]): string {
  const address = shellQuote(registryAddress);
  return [
    "set -eu",
    readLine("password"),
    `if [ -z "$password" ]; then echo "no registry password on stdin" >&2; exit 1; fi`,
    'missing=""',
    `for ref in ${refs.map(shellQuote).join(" ")}; do`,
    '  if docker image inspect "$ref" >/dev/null 2>&1; then echo "has $ref"; else missing="$missing $ref"; fi',
    "done",
    '[ -n "$missing" ] || exit 0',
    "cfg=$(mktemp -d)",
    `trap 'DOCKER_CONFIG="$cfg" docker logout ${address} >/dev/null 2>&1 || true; rm -rf "$cfg"' EXIT`,
    `printf '%s' "$password" | DOCKER_CONFIG="$cfg" docker login --username ${shellQuote(username)} --password-stdin ${address} >/dev/null`,
    // $missing is split on purpose: references the program quoted above, no spaces.
    "for ref in $missing; do",
    `  DOCKER_CONFIG="$cfg" docker pull -q "$ref" >/dev/null || { echo "cannot pull $ref from ${registryAddress}" >&2; exit 1; }`,
    '  echo "pulled $ref"',
    "done",
  ].join("\n");
}

/**
 * On the manager: which node runs each replica, once every service has
 * converged: as many running tasks as replicas, none still starting, none on
 * a node that is not active. Fails naming the services that did not converge
 * within `timeoutSeconds`. Given a `rebalance` script (rebalanceScript), runs
 * it next, its progress on stderr, before it prints the placement.
 */
export function placementScript(serviceNames: readonly string[], timeoutSeconds = 300, rebalance?: string): string {
  const services = serviceNames.map(shellQuote).join(" ");
  return [
    "set -u",
    `deadline=$(( $(date +%s) + ${timeoutSeconds} ))`,
    "while :; do",
    `  inactive=$(docker node ls --format '{{.Hostname}} {{.Availability}}' | awk '$2 != "Active" { print $1 }')`,
    '  pending=""',
    `  for service in ${services}; do`,
    `    want=$(docker service inspect --format '{{.Spec.Mode.Replicated.Replicas}}' "$service")`,
    `    tasks=$(docker service ps --filter desired-state=running --format '{{.Node}} {{.CurrentState}}' "$service")`,
    `    total=$(printf '%s\\n' "$tasks" | grep -c . || true)`,
    `    running=$(printf '%s\\n' "$tasks" | grep -c ' Running ' || true)`,
    '    stray=""',
    `    for host in $inactive; do printf '%s\\n' "$tasks" | grep -q "^$host " && stray=yes; done`,
    '    if [ "$total" != "$want" ] || [ "$running" != "$want" ] || [ -n "$stray" ]; then pending="$pending $service"; fi',
    "  done",
    '  [ -z "$pending" ] && break',
    '  if [ "$(date +%s)" -ge "$deadline" ]; then',
    `    echo "not converged within ${timeoutSeconds} s:$pending" >&2`,
    `    docker service ps --filter desired-state=running ${services} >&2`,
    "    exit 1",
    "  fi",
    "  sleep 2",
    "done",
    // Its progress goes to stderr: stdout is the placement the program reports.
    ...(rebalance === undefined ? [] : [`( ${rebalance}\n) >&2 || exit 1`]),
    `docker service ps --filter desired-state=running --format '{{.Name}} {{.Node}} {{.CurrentState}}' ${services}`,
  ].join("\n");
}

/**
 * The "uneven spread" decision and the plan that evens it, as an awk program
 * (pure: text in, verdict out; tests/pulumi/scripts.test.ts runs it). Input
 * lines: `node <hostname>` for every node that may take tasks (Ready and
 * Active), `load <hostname> <n>` with the node's running tasks of every
 * service, `task <service> <hostname>` for every running task of the worker
 * services.
 *
 * The spread is uneven when a service's own tasks differ by more than one
 * between two eligible nodes, or when the worker tasks of all the services
 * together do (a node running none while another runs two is uneven, however
 * busy the first is with the master, the broker or etcd: Swarm's own rule
 * counts those too, and then leaves every worker on the non-manager VMs).
 * It then plans where each service's tasks go: service by service, each task
 * on the node with the fewest tasks of that service planned (so a service is
 * as even as it can be, never above the maxReplicasPerNode it runs under),
 * then the fewest worker tasks planned, then a node that runs it now (fewest
 * moves), then the fewest tasks in all, then input order. It prints the
 * first service, in input order and not listed in `-v moved=" a b "`, whose
 * tasks are not where the plan puts them, as `<service> <plan, comma-separated>
 * <eligible nodes outside the plan…>`, or nothing when the spread is even.
 */
export const UNEVEN_SPREAD_AWK = [
  '$1 == "node" { nodes[++n] = $2; next }',
  '$1 == "load" { load[$2] = $3; next }',
  '$1 == "task" { if (!($2 in seen)) { seen[$2] = 1; order[++m] = $2 } total[$2]++; count[$2, $3]++ }',
  // Is node a a better place than node b for the next task of service s?
  "function better(s, a, b,    runsA, runsB) {",
  "  if (plan[s, a] + 0 != plan[s, b] + 0) return plan[s, a] + 0 < plan[s, b] + 0",
  "  if (planned[a] + 0 != planned[b] + 0) return planned[a] + 0 < planned[b] + 0",
  "  runsA = count[s, a] + 0 > plan[s, a] + 0; runsB = count[s, b] + 0 > plan[s, b] + 0",
  "  if (runsA != runsB) return runsA",
  "  return load[a] + 0 < load[b] + 0",
  "}",
  "END {",
  "  uneven = 0",
  "  for (j = 1; j <= n; j++) { w = 0; for (i = 1; i <= m; i++) w += count[order[i], nodes[j]]; if (j == 1 || w > hi) hi = w; if (j == 1 || w < lo) lo = w }",
  "  if (n > 0 && hi - lo > 1) uneven = 1",
  "  for (i = 1; i <= m && !uneven; i++) {",
  "    s = order[i]",
  "    for (j = 1; j <= n; j++) { c = count[s, nodes[j]] + 0; if (j == 1 || c > hi) hi = c; if (j == 1 || c < lo) lo = c }",
  "    if (n > 0 && hi - lo > 1) uneven = 1",
  "  }",
  "  if (!uneven) exit",
  "  for (i = 1; i <= m; i++) {",
  "    s = order[i]",
  "    for (t = 1; t <= total[s]; t++) {",
  '      best = ""',
  "      for (j = 1; j <= n; j++) { a = nodes[j]; if (best == \"\" || better(s, a, best)) best = a }",
  "      plan[s, best]++; planned[best]++",
  "    }",
  "  }",
  "  for (i = 1; i <= m; i++) {",
  "    s = order[i]",
  '    if (index(moved, " " s " ")) continue',
  "    same = 1; onto = \"\"; outside = \"\"",
  "    for (j = 1; j <= n; j++) {",
  "      a = nodes[j]",
  "      if (count[s, a] + 0 != plan[s, a] + 0) same = 0",
  '      for (t = 1; t <= plan[s, a]; t++) onto = onto (onto == "" ? "" : ",") a',
  '      if (plan[s, a] + 0 == 0) outside = outside " " a',
  "    }",
  // A task on a node that is not eligible is never where the plan puts it.
  "    placed = 0; for (j = 1; j <= n; j++) placed += count[s, nodes[j]]",
  "    if (placed != total[s]) same = 0",
  '    if (!same) { print s, onto outside; exit }',
  "  }",
  "}",
].join("\n");

/** The node label the rebalance puts on a node it paused, so that it (or its next run) resumes only those. */
export const REBALANCE_PAUSE_LABEL = "ai-swarm.rebalance-paused";

/**
 * On the primary manager: while the worker spread is uneven
 * (UNEVEN_SPREAD_AWK), force-update, one at a time, the next service not yet
 * moved whose tasks are not where the plan puts them, with every other
 * eligible node paused meanwhile (a paused node keeps its tasks and takes no
 * new one): Swarm's scheduler, which prefers the node with the fewest tasks in
 * all, would otherwise put them back on the non-manager VMs. Each service
 * moves at most once. The paused nodes carry REBALANCE_PAUSE_LABEL and are
 * resumed after each move, on any exit, and by the next run if this one was
 * killed. Prints "before:" and "after:" with the worker tasks per node, and
 * each service it moved and where, on stdout; nothing moves when the spread
 * is already even.
 */
export function rebalanceScript(serviceNames: readonly string[]): string {
  const services = serviceNames.map(shellQuote).join(" ");
  const label = shellQuote(REBALANCE_PAUSE_LABEL);
  return [
    "set -u",
    "snapshot() {",
    `  for node in $(docker node ls --format '{{.Hostname}} {{.Status}} {{.Availability}}' | awk '$2 == "Ready" && $3 == "Active" { print $1 }'); do`,
    '    echo "node $node"',
    `    echo "load $node $(docker node ps --filter desired-state=running --format '{{.CurrentState}}' "$node" | grep -c '^Running')"`,
    "  done",
    `  for service in ${services}; do`,
    `    docker service ps --filter desired-state=running --format '{{.Node}} {{.CurrentState}}' "$service" | awk -v s="$service" '$2 == "Running" { print "task", s, $1 }'`,
    "  done",
    "}",
    "perNode() {",
    `  snapshot | awk '$1 == "node" { c[$2] += 0 } $1 == "task" { c[$3]++ } END { for (h in c) print h "=" c[h] }' | sort | tr '\\n' ' '`,
    "}",
    "resume() {",
    `  for node in $(docker node inspect --format '{{.Description.Hostname}} {{index .Spec.Labels "${REBALANCE_PAUSE_LABEL}"}}' $(docker node ls -q) | awk '$2 == "true" { print $1 }'); do`,
    `    docker node update --availability active --label-rm ${label} "$node" >/dev/null || { echo "cannot resume $node: run docker node update --availability active $node" >&2; return 1; }`,
    '    [ -z "${1:-}" ] || echo "resumed $node, left paused by an interrupted rebalance"',
    "  done",
    "}",
    "resume stale || exit 1",
    "trap resume EXIT",
    "trap 'exit 1' HUP INT TERM",
    `echo "before: $(perNode)"`,
    'moved=" "',
    "while :; do",
    `  next=$(snapshot | awk -v moved="$moved" ${shellQuote(UNEVEN_SPREAD_AWK)})`,
    '  [ -n "$next" ] || break',
    // Words the program and docker wrote: a service name, node names; split on purpose.
    '  set -- $next; service=$1; onto=$2; shift 2',
    '  echo "rebalancing $service onto $onto"',
    '  for node in "$@"; do',
    `    docker node update --availability pause --label-add ${label}=true "$node" >/dev/null || { echo "cannot pause $node" >&2; exit 1; }`,
    "  done",
    '  if ! docker service update --force --detach=false --quiet "$service" >/dev/null; then echo "force-updating $service failed" >&2; exit 1; fi',
    "  resume || exit 1",
    '  moved="$moved$service "',
    "done",
    `[ "$moved" = " " ] && echo "spread is even: nothing moved"`,
    `echo "after: $(perNode)"`,
  ].join("\n");
}

/** Run on the manager for the live view of which VM runs each replica (no waiting). */
export function placementCommand(serviceNames: readonly string[]): string {
  return `docker service ps --filter desired-state=running --format '{{.Name}} {{.Node}} {{.CurrentState}}' ${serviceNames.map(shellQuote).join(" ")}`;
}

/**
 * On the manager: each image reference pinned to the digest the manager holds
 * for it ("eclipse-mosquitto:2" → "eclipse-mosquitto:2@sha256:…"), pulling it
 * first if the manager does not have it. A reference with a digest stays as it
 * is; an image no registry served (a local build, such as the lab's base
 * images) has no repository digest and stays a tag. One line per image, in order.
 */
export function pinImagesScript(images: readonly string[]): string {
  return [
    "set -eu",
    "pin() {",
    '  ref=$1',
    '  case "$ref" in *@sha256:*) echo "$ref"; return ;; esac',
    '  if ! docker image inspect "$ref" >/dev/null 2>&1; then',
    '    docker pull -q "$ref" >/dev/null || { echo "cannot pull $ref on the manager" >&2; exit 1; }',
    "  fi",
    '  last=${ref##*/}',
    '  case "$last" in *:*) repo=${ref%:*} ;; *) repo=$ref ;; esac',
    `  digest=$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$ref" | awk -v p="$repo@" 'index($0, p) == 1 { print substr($0, length(p) + 1); exit }')`,
    '  if [ -n "$digest" ]; then echo "$ref@$digest"; else echo "$ref"; fi',
    "}",
    ...images.map((image) => `pin ${shellQuote(image)}`),
  ].join("\n");
}
