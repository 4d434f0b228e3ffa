#!/usr/bin/env python3
"""Checks what `helm template` rendered from charts/ember.

    check_chart.py CASE RENDERED EMBER WORKDIR

CASE names the values the manifests were rendered with (default, url, custom,
bearer; see chart_test.sh). The agent config in the ConfigMap is extracted and
validated by the real agent: `EMBER agent --config FILE --check` must exit 0.
"""
import base64
import subprocess
import sys

import yaml

LEAST_PRIVILEGE = ["BPF", "PERFMON", "SYS_PTRACE", "SYS_RESOURCE", "DAC_READ_SEARCH",
                   "SYSLOG", "CHECKPOINT_RESTORE"]
AUTH_DIR = "/var/run/secrets/ember/auth"
TLS_DIR = "/var/run/secrets/ember/tls"

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def expect_eq(got, want, what):
    check(got == want, f"{what}: got {got!r}, want {want!r}")


def one(docs, kind):
    found = [d for d in docs if d["kind"] == kind]
    if len(found) != 1:
        sys.exit(f"check_chart: expected one {kind}, found {len(found)}")
    return found[0]


def main():
    case, rendered, ember, workdir = sys.argv[1:5]
    with open(rendered) as f:
        text = f.read()
    docs = [d for d in yaml.safe_load_all(text) if d]
    kinds = sorted(d["kind"] for d in docs)

    ds = one(docs, "DaemonSet")
    cm = one(docs, "ConfigMap")
    pod = ds["spec"]["template"]["spec"]
    annotations = ds["spec"]["template"]["metadata"].get("annotations", {})
    containers = pod["containers"]
    expect_eq(len(containers), 1, "containers")
    c = containers[0]
    sc = c["securityContext"]

    # --- the agent config: extracted and checked by ember itself -------------
    config_text = cm["data"]["ember.yaml"]
    config_path = f"{workdir}/ember-{case}.yaml"
    with open(config_path, "w") as f:
        f.write(config_text)
    run = subprocess.run([ember, "agent", "--config", config_path, "--check"],
                         capture_output=True, text=True)
    if run.returncode != 0:
        failures.append(f"ember agent --config {config_path} --check exited {run.returncode}:\n"
                        f"{run.stderr}{config_text}")
    config = yaml.safe_load(config_text)
    checked = yaml.safe_load(run.stdout) if run.returncode == 0 else {}

    # --- everything the agent needs, whatever the values ---------------------
    check(pod.get("hostPID") is True, "hostPID is not true")
    check(not pod.get("hostNetwork"), "hostNetwork is set")
    node_name = [e for e in c.get("env", []) if e["name"] == "NODE_NAME"]
    expect_eq(node_name, [{"name": "NODE_NAME",
                           "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
              "NODE_NAME env")
    expect_eq(sc.get("readOnlyRootFilesystem"), True, "readOnlyRootFilesystem")
    expect_eq(sc.get("runAsUser"), 0, "runAsUser")
    expect_eq(c["args"][:3], ["agent", "--config", "/etc/ember/ember.yaml"], "args")
    expect_eq(config["paths"]["proc"], "/host/proc", "paths.proc")
    expect_eq(config["output"]["directory"], "/var/lib/ember/profiles", "output.directory")
    expect_eq(config["symbolizer"]["debuginfod"]["cache_dir"], "/var/cache/ember/debuginfod",
              "symbolizer.debuginfod.cache_dir")
    check("checksum/config" in annotations, "no checksum/config annotation")

    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    for m in c["volumeMounts"]:
        check(m["name"] in volumes, f"mount {m['mountPath']}: no volume {m['name']}")
    ro = lambda path: mounts.get(path, {}).get("readOnly") is True  # noqa: E731

    def host_path(mount_path):
        m = mounts.get(mount_path)
        if not m:
            failures.append(f"nothing mounted at {mount_path}")
            return None
        return volumes.get(m["name"], {}).get("hostPath", {}).get("path")

    expect_eq(host_path("/host/proc"), "/proc", "/host/proc's host path")
    check(ro("/host/proc"), "/host/proc is not read-only")
    expect_eq(host_path("/sys/kernel/btf"), "/sys/kernel/btf", "/sys/kernel/btf's host path")
    check(ro("/sys/kernel/btf"), "/sys/kernel/btf is not read-only")
    check(ro("/etc/ember"), "/etc/ember is not read-only")
    expect_eq(volumes[mounts["/etc/ember"]["name"]].get("configMap", {}).get("name"),
              cm["metadata"]["name"], "/etc/ember's ConfigMap")
    # Writable: the root filesystem is read-only.
    for path in ("/var/cache/ember", "/var/lib/ember", "/tmp"):
        check(path in mounts and not mounts[path].get("readOnly"), f"{path} is not writable")
    for path, m in mounts.items():
        if path not in ("/var/cache/ember", "/var/lib/ember", "/tmp"):
            check(m.get("readOnly") is True, f"{path} is writable")

    # Credentials: files from Secrets, never in the ConfigMap or the pod spec.
    secrets = [d for d in docs if d["kind"] == "Secret"]
    cm_text = yaml.safe_dump(cm)
    ds_text = yaml.safe_dump(ds)
    for s in secrets:
        for key, b64 in s.get("data", {}).items():
            value = base64.b64decode(b64).decode()
            check(value not in cm_text and b64 not in cm_text,
                  f"the value of Secret {s['metadata']['name']} key {key} is in the ConfigMap")
            check(value not in ds_text, f"Secret {s['metadata']['name']} value is in the DaemonSet")

    def secret_file(path, volume_name, secret_name, key):
        """path (from the config) is `key` of Secret `secret_name`, mounted."""
        if not path:
            failures.append(f"no file for key {key} of Secret {secret_name}")
            return
        directory, _, name = path.rpartition("/")
        m = mounts.get(directory)
        if not m:
            failures.append(f"{path}: nothing mounted at {directory}")
            return
        check(m.get("readOnly") is True, f"{directory} is writable")
        expect_eq(m["name"], volume_name, f"volume mounted at {directory}")
        secret = volumes[m["name"]].get("secret", {})
        expect_eq(secret.get("secretName"), secret_name, f"Secret mounted at {directory}")
        items = secret.get("items")
        if items is not None:
            check({"key": key, "path": name} in items,
                  f"{path}: Secret {secret_name} key {key} is not projected as {name}")
        else:
            expect_eq(name, key, f"{path}: file name")

    # --- per case ------------------------------------------------------------
    if case in ("default", "url"):
        expect_eq(sc.get("privileged"), False, "privileged")
        expect_eq(sc.get("allowPrivilegeEscalation"), False, "allowPrivilegeEscalation")
        expect_eq(sc["capabilities"]["drop"], ["ALL"], "capabilities.drop")
        expect_eq(sc["capabilities"]["add"], LEAST_PRIVILEGE, "capabilities.add")
        expect_eq(sc.get("seccompProfile"), {"type": "Unconfined"}, "seccompProfile")
        # Kubernetes 1.29: AppArmor by annotation.
        expect_eq(annotations.get("container.apparmor.security.beta.kubernetes.io/ember"),
                  "unconfined", "AppArmor annotation")
        check("appArmorProfile" not in sc, "appArmorProfile field before Kubernetes 1.30")
        expect_eq(pod.get("tolerations"), [{"operator": "Exists"}], "tolerations")
        check("priorityClassName" not in pod, "priorityClassName is set")
        expect_eq(c["resources"], {"requests": {"cpu": "100m", "memory": "256Mi"},
                                   "limits": {"memory": "1Gi"}}, "resources")
        expect_eq(annotations.get("prometheus.io/scrape"), "true", "prometheus.io/scrape")
        expect_eq(annotations.get("prometheus.io/port"), "9799", "prometheus.io/port")
        expect_eq(annotations.get("prometheus.io/path"), "/metrics", "prometheus.io/path")
        expect_eq(c.get("ports"), [{"name": "metrics", "containerPort": 9799,
                                    "protocol": "TCP"}], "ports")
        expect_eq(c["livenessProbe"]["httpGet"], {"path": "/healthz", "port": "metrics"},
                  "livenessProbe")
        expect_eq(config["metrics"], {"listen": "0.0.0.0:9799"}, "metrics")
        expect_eq(config.get("kubernetes"), {"enabled": True}, "kubernetes")
        expect_eq(kinds, ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet",
                          "ServiceAccount"], "rendered kinds")
        role = one(docs, "ClusterRole")
        expect_eq(role["rules"], [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]},
        ], "ClusterRole rules")
        binding = one(docs, "ClusterRoleBinding")
        sa = one(docs, "ServiceAccount")
        expect_eq(binding["roleRef"], {"apiGroup": "rbac.authorization.k8s.io",
                                       "kind": "ClusterRole", "name": role["metadata"]["name"]},
                  "roleRef")
        expect_eq(binding["subjects"], [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                                         "namespace": "profiling"}], "binding subjects")
        expect_eq(pod["serviceAccountName"], sa["metadata"]["name"], "serviceAccountName")
        expect_eq(pod.get("automountServiceAccountToken"), True, "automountServiceAccountToken")
        check("/host/sys/fs/cgroup" not in mounts, "cgroup mounted by default")
        for path in mounts:
            check(not path.startswith("/var/run/secrets/ember"), f"{path} mounted without auth")
        if case == "default":
            check("servers" not in config, "servers without server.url")
            if checked:
                expect_eq(checked.get("servers"), [], "servers (--check)")
        else:
            expect_eq(config["servers"], [{"url": "http://pyroscope.monitoring:4040",
                                           "api": "push"}], "servers")

    elif case == "custom":
        expect_eq(sc.get("privileged"), True, "privileged")
        check("capabilities" not in sc, "capabilities listed although privileged")
        check("allowPrivilegeEscalation" not in sc, "allowPrivilegeEscalation with privileged")
        check(not any(k.startswith("container.apparmor") for k in annotations),
              "AppArmor annotation although privileged")
        expect_eq(pod.get("tolerations"), [{"key": "dedicated", "operator": "Equal",
                                            "value": "gpu", "effect": "NoSchedule"}],
                  "tolerations")
        expect_eq(c["resources"], {"requests": {"cpu": "250m", "memory": "512Mi"},
                                   "limits": {"cpu": "2", "memory": "2Gi"}}, "resources")
        expect_eq(pod.get("priorityClassName"), "system-node-critical", "priorityClassName")
        expect_eq(pod.get("nodeSelector"), {"kubernetes.io/os": "linux"}, "nodeSelector")
        expect_eq(c["args"][3:], ["--log-level", "debug"], "extra args")
        check("prometheus.io/scrape" not in annotations, "scrape annotations when turned off")
        expect_eq(annotations.get("team"), "profiling", "podAnnotations")
        expect_eq(c.get("ports"), [{"name": "metrics", "containerPort": 9900,
                                    "protocol": "TCP"}], "ports")
        expect_eq(config["metrics"], {"listen": "0.0.0.0:9900"}, "metrics")
        expect_eq(config["frequency"], 49, "frequency")
        expect_eq(config["interval"], "15s", "interval")
        expect_eq(config["labels"], {"cluster": "prod-eu1", "env": "prod"}, "labels")
        expect_eq(config["relabel_configs"], [
            {"source_labels": ["__meta_kubernetes_namespace"], "regex": "kube-system",
             "action": "drop"},
            {"regex": "__meta_kubernetes_pod_label_(.+)", "action": "labelmap"},
        ], "relabel_configs")
        expect_eq(config["sampler"], {"include_idle": True}, "sampler")
        expect_eq(config["symbolizer"]["debug_dir"], "/host/debug", "symbolizer.debug_dir")
        expect_eq(config["symbolizer"]["debuginfod"]["urls"], ["https://debuginfod.debian.net"],
                  "debuginfod urls")
        expect_eq(host_path("/host/debug"), "/usr/lib/debug", "/host/debug's host path")
        expect_eq(host_path("/host/sys/fs/cgroup"), "/sys/fs/cgroup", "cgroup host path")
        expect_eq(host_path("/var/cache/ember"), "/var/cache/ember", "debuginfod cache host path")
        servers = config["servers"]
        expect_eq(len(servers), 1, "servers")
        s = servers[0]
        expect_eq({k: s.get(k) for k in ("url", "api", "name", "tenant_id", "headers")},
                  {"url": "https://pyroscope.example.com:4443/pyro", "api": "ingest",
                   "name": "central", "tenant_id": "team-a", "headers": {"X-Team": "profiling"}},
                  "server")
        expect_eq(s["basic_auth"], {"username": "ember", "password_file": f"{AUTH_DIR}/pw"},
                  "basic_auth")
        check("password" not in s["basic_auth"] and "bearer_token" not in s, "inline secret")
        secret_file(s["basic_auth"]["password_file"], "auth", "pyroscope-credentials", "pw")
        expect_eq(s["tls"], {"ca_file": f"{TLS_DIR}/ca.pem", "server_name": "pyroscope.internal"},
                  "tls")
        secret_file(s["tls"]["ca_file"], "tls", "pyroscope-ca", "ca.pem")
        check(not secrets, "a Secret rendered for an existing Secret")
        if checked:
            expect_eq(checked["servers"][0]["basic_auth"]["password_file"], f"{AUTH_DIR}/pw",
                      "password_file (--check)")
            expect_eq(len(checked.get("relabel_configs", [])), 2, "relabel_configs (--check)")

    elif case == "bearer":
        token = "tok-3f9a1c77-do-not-leak"
        check(token not in cm_text and token not in ds_text, "the token leaked")
        expect_eq(sc["capabilities"]["add"], LEAST_PRIVILEGE + ["SYS_ADMIN"], "capabilities.add")
        # Kubernetes 1.30: AppArmor by field.
        expect_eq(sc.get("appArmorProfile"), {"type": "RuntimeDefault"}, "appArmorProfile")
        check(not any(k.startswith("container.apparmor") for k in annotations),
              "AppArmor annotation on Kubernetes 1.30")
        expect_eq(kinds, ["ConfigMap", "DaemonSet", "Secret", "ServiceAccount"], "rendered kinds")
        expect_eq(pod.get("automountServiceAccountToken"), False, "automountServiceAccountToken")
        expect_eq(config.get("kubernetes"), {"enabled": False}, "kubernetes")
        expect_eq(config["metrics"], {"listen": ""}, "metrics")
        check("ports" not in c and "livenessProbe" not in c, "ports or probe without metrics")
        check("prometheus.io/scrape" not in annotations, "scrape annotations without metrics")
        secret = secrets[0] if secrets else {"metadata": {}, "data": {}}
        expect_eq(secret["metadata"].get("name"), "prof-auth", "Secret name")
        expect_eq(secret["data"], {"token": base64.b64encode(token.encode()).decode()},
                  "Secret data")
        s = config["servers"][0]
        expect_eq(s.get("bearer_token_file"), f"{AUTH_DIR}/token", "bearer_token_file")
        check("bearer_token" not in s, "inline bearer_token")
        secret_file(s.get("bearer_token_file"), "auth", "prof-auth", "token")
    else:
        sys.exit(f"check_chart: unknown case {case}")

    if failures:
        print(f"check_chart {case}: {len(failures)} failure(s):", file=sys.stderr)
        for f in failures:
            print("  - " + f, file=sys.stderr)
        sys.exit(1)
    print(f"check_chart {case}: ok ({', '.join(kinds)})")


if __name__ == "__main__":
    main()
