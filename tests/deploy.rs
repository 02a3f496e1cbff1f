//! `deploy/kubernetes` renders with `kubectl kustomize`, its objects fit together (probes,
//! ports, mounts, selectors, keys), and the configuration it mounts starts the real binary:
//! the rendered ConfigMaps written where the Deployment mounts them (under a temporary
//! root), the Deployment's environment, the Secret's keys filled in. Skipped, saying why,
//! without kubectl (Debian's is too old for Kustomize components; `scripts/test` says so).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_norway::Value;

use crate::support::{repo, temp_dir, Server};

type Objects = BTreeMap<(String, String), Value>;

/// Whether `tool` is on PATH; says the test is skipped when not.
fn on_path(tool: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
    if !found {
        eprintln!("SKIPPED deploy test: {tool} not found on PATH");
    }
    found
}

/// The objects `kubectl kustomize DIR` renders, by kind and name; `None`, saying so, without
/// kubectl.
fn render(dir: &str) -> Option<Objects> {
    if !on_path("kubectl") {
        return None;
    }
    let mut kubectl = Command::new("kubectl");
    kubectl.arg("kustomize").arg(repo().join(dir));
    Some(objects_of(kubectl, &format!("kubectl kustomize {dir}")))
}

/// The objects `helm template` renders from deploy/helm/sluice with `sets` (`key=value`);
/// `None`, saying so, without helm.
fn render_chart(sets: &[&str]) -> Option<Objects> {
    if !on_path("helm") {
        return None;
    }
    let mut helm = Command::new("helm");
    helm.args(["template", "sluice"])
        .arg(repo().join("deploy/helm/sluice"));
    for set in sets {
        helm.args(["--set", set]);
    }
    Some(objects_of(helm, &format!("helm template {sets:?}")))
}

fn objects_of(mut command: Command, what: &str) -> Objects {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what} (the deploy test needs it): {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut objects = BTreeMap::new();
    for doc in serde_norway::Deserializer::from_str(&text) {
        let v: Value = serde::Deserialize::deserialize(doc).unwrap();
        if v.is_null() {
            continue; // a template that rendered nothing
        }
        let key = (
            s(&v["kind"]).to_owned(),
            s(&v["metadata"]["name"]).to_owned(),
        );
        assert!(objects.insert(key.clone(), v).is_none(), "{key:?} twice");
    }
    objects
}

fn s(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, found {v:?}"))
}

fn seq(v: &Value) -> &Vec<Value> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("expected a list, found {v:?}"))
}

fn get<'a>(objects: &'a Objects, kind: &str, name: &str) -> &'a Value {
    objects
        .get(&(kind.to_owned(), name.to_owned()))
        .unwrap_or_else(|| {
            panic!(
                "no {kind} {name} among {:?}",
                objects.keys().collect::<Vec<_>>()
            )
        })
}

/// The one object of `kind` whose name starts with `prefix` (generated names carry a hash).
fn named_like<'a>(objects: &'a Objects, kind: &str, prefix: &str) -> (&'a str, &'a Value) {
    let found: Vec<_> = objects
        .iter()
        .filter(|((k, n), _)| k == kind && n.starts_with(prefix))
        .map(|((_, n), v)| (n.as_str(), v))
        .collect();
    assert_eq!(found.len(), 1, "{kind} {prefix}*: {found:?}");
    found[0]
}

fn env_of(container: &Value) -> BTreeMap<String, String> {
    seq(&container["env"])
        .iter()
        .map(|e| (s(&e["name"]).to_owned(), s(&e["value"]).to_owned()))
        .collect()
}

fn port_of(container: &Value, name: &str) -> u64 {
    seq(&container["ports"])
        .iter()
        .find(|p| p["name"].as_str() == Some(name))
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("no container port {name}"))
}

fn listen_port(addr: &str) -> u64 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

/// Every `key: value` of `selector` is among `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    let selector = selector.as_mapping().expect("a selector");
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[test]
fn the_kubernetes_base_renders_and_its_objects_fit_together() {
    let Some(objects) = render("deploy/kubernetes") else {
        return;
    };
    let kinds: Vec<&str> = objects.keys().map(|(k, _)| k.as_str()).collect();
    for kind in [
        "Deployment",
        "Service",
        "ConfigMap",
        "Secret",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    ] {
        assert!(kinds.contains(&kind), "no {kind} in {kinds:?}");
    }
    let deploy = get(&objects, "Deployment", "sluice");
    let pod = &deploy["spec"]["template"];
    let labels = &pod["metadata"]["labels"];
    assert!(selects(&deploy["spec"]["selector"]["matchLabels"], labels));
    let containers = seq(&pod["spec"]["containers"]);
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let env = env_of(c);

    // Ports: each listener the environment sets is a named container port.
    for (var, port) in [
        ("SLUICE_GRPC_LISTEN", "grpc"),
        ("SLUICE_HTTP_LISTEN", "http"),
        ("SLUICE_ADMIN_LISTEN", "metrics"),
    ] {
        assert!(env[var].starts_with("0.0.0.0:"), "{var} = {}", env[var]);
        assert_eq!(
            listen_port(&env[var]),
            port_of(c, port),
            "{var} vs port {port}"
        );
    }
    // Probes: readiness on /readyz, liveness and startup on /healthz, all on the admin port.
    for (probe, path) in [
        ("readinessProbe", "/readyz"),
        ("livenessProbe", "/healthz"),
        ("startupProbe", "/healthz"),
    ] {
        let get = &c[probe]["httpGet"];
        assert_eq!(s(&get["path"]), path, "{probe}");
        assert_eq!(s(&get["port"]), "metrics", "{probe}");
    }
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());

    // Mounts: the policy directory and the tenants file the environment names are the
    // ConfigMaps' mount points; the policies' ConfigMap keeps its name (hot reload), the
    // tenants' carries a content hash (a change rolls the pods).
    let mounts: BTreeMap<&str, &str> = seq(&c["volumeMounts"])
        .iter()
        .map(|m| (s(&m["name"]), s(&m["mountPath"])))
        .collect();
    let volumes: BTreeMap<&str, &Value> = seq(&pod["spec"]["volumes"])
        .iter()
        .map(|v| (s(&v["name"]), v))
        .collect();
    assert_eq!(mounts["policies"], env["SLUICE_POLICY"]);
    assert_eq!(
        Path::new(&env["SLUICE_TENANTS"]).parent().unwrap(),
        Path::new(mounts["tenants"])
    );
    assert_eq!(
        s(&volumes["policies"]["configMap"]["name"]),
        "sluice-policies"
    );
    let policies = get(&objects, "ConfigMap", "sluice-policies");
    let (tenants_name, tenants) = named_like(&objects, "ConfigMap", "sluice-tenants-");
    assert_eq!(s(&volumes["tenants"]["configMap"]["name"]), tenants_name);
    assert!(tenants["data"]["tenants.yaml"].is_string());
    // The policy deployed is the shipped default, not a copy drifting from it.
    let shipped = std::fs::read_to_string(repo().join("policies/default.yaml")).unwrap();
    assert_eq!(
        s(&policies["data"]["default.yaml"]),
        shipped,
        "deploy/kubernetes/base/policies/default.yaml differs from policies/default.yaml: copy it again"
    );
    // So is the probe it names, projected where the policy's relative path finds it; every
    // projected key exists (a missing one fails the pod's start).
    let probe = "smollm2-135m-instruct-q8_0.json";
    let shipped_probe =
        std::fs::read_to_string(repo().join("policies/probes").join(probe)).unwrap();
    assert!(
        s(&policies["data"][probe]) == shipped_probe,
        "deploy/kubernetes/base/policies/probes/{probe} differs from policies/probes/{probe}: copy it again"
    );
    let items = projected_items(deploy);
    assert!(
        items.contains(&(probe.to_owned(), format!("probes/{probe}"))),
        "{items:?}"
    );
    for (key, _) in &items {
        assert!(
            policies["data"][key.as_str()].is_string(),
            "projected key {key} is not in the ConfigMap"
        );
    }

    // Keys: every variable the tenants file and the policy read a key from is in the Secret
    // the pod takes its environment from.
    let secret_name = s(&seq(&c["envFrom"])[0]["secretRef"]["name"]);
    let secret = get(&objects, "Secret", secret_name);
    let keys = secret["stringData"].as_mapping().expect("stringData");
    let wanted = [s(&tenants["data"]["tenants.yaml"]), shipped.as_str()]
        .iter()
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| l.trim().strip_prefix("api_key_env:"))
                .map(|v| v.split('#').next().unwrap().trim().to_owned())
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>();
    assert!(wanted.len() >= 3, "{wanted:?}");
    for var in &wanted {
        assert!(
            keys.contains_key(Value::from(var.as_str())),
            "{var} is not in Secret {secret_name}"
        );
    }

    // Services, the disruption budget and the autoscaler point at these pods and ports.
    for name in ["sluice", "sluice-grpc"] {
        let svc = get(&objects, "Service", name);
        assert!(selects(&svc["spec"]["selector"], labels), "Service {name}");
        for p in seq(&svc["spec"]["ports"]) {
            port_of(c, s(&p["targetPort"]));
        }
    }
    let pdb = get(&objects, "PodDisruptionBudget", "sluice");
    assert!(selects(&pdb["spec"]["selector"]["matchLabels"], labels));
    let hpa = get(&objects, "HorizontalPodAutoscaler", "sluice");
    assert_eq!(s(&hpa["spec"]["scaleTargetRef"]["name"]), "sluice");
    assert_eq!(s(&hpa["spec"]["scaleTargetRef"]["kind"]), "Deployment");
}

/// `objects` with the tenants ConfigMap's content hash (Kustomize's and Helm's differ) taken
/// out of its name and of the Deployment's volume that mounts it.
fn without_tenants_hash(mut objects: Objects) -> Objects {
    let hashed: Vec<_> = objects
        .keys()
        .filter(|(k, n)| k == "ConfigMap" && n.starts_with("sluice-tenants-"))
        .cloned()
        .collect();
    for key in hashed {
        let mut v = objects.remove(&key).unwrap();
        v["metadata"]["name"] = Value::from("sluice-tenants-HASH");
        objects.insert(("ConfigMap".into(), "sluice-tenants-HASH".into()), v);
    }
    if let Some(d) = objects.get_mut(&("Deployment".to_owned(), "sluice".to_owned())) {
        let volumes = d["spec"]["template"]["spec"]["volumes"]
            .as_sequence_mut()
            .unwrap();
        for v in volumes.iter_mut().filter(|v| v["name"] == "tenants") {
            v["configMap"]["name"] = Value::from("sluice-tenants-HASH");
        }
    }
    objects
}

#[test]
fn the_helm_chart_renders_the_same_objects_as_kustomize() {
    for (sets, dir) in [
        (&[][..], "deploy/kubernetes"),
        (&["redis.enabled=true"][..], "deploy/kubernetes/with-redis"),
    ] {
        let (Some(chart), Some(kustomized)) = (render_chart(sets), render(dir)) else {
            return;
        };
        let (chart, kustomized) = (
            without_tenants_hash(chart),
            without_tenants_hash(kustomized),
        );
        assert_eq!(
            chart.keys().collect::<Vec<_>>(),
            kustomized.keys().collect::<Vec<_>>(),
            "helm {sets:?} and {dir} render different objects"
        );
        for (key, object) in &kustomized {
            assert!(
                chart[key] == *object,
                "{key:?} differs between helm {sets:?} and {dir}:\nhelm: {}\nkustomize: {}",
                serde_norway::to_string(&chart[key]).unwrap(),
                serde_norway::to_string(object).unwrap()
            );
        }
    }
}

#[test]
fn the_helm_values_change_what_they_name() {
    let Some(chart) = render_chart(&[
        "replicas=3",
        "image.tag=0.2.0",
        "extraEnv[0].name=OTEL_EXPORTER_OTLP_ENDPOINT",
        "extraEnv[0].value=http://otel-collector:4317",
        "secret.create=false",
        "autoscaling.maxReplicas=4",
    ]) else {
        return;
    };
    let deploy = get(&chart, "Deployment", "sluice");
    assert_eq!(deploy["spec"]["replicas"].as_u64(), Some(3));
    let container = &deploy["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(s(&container["image"]), "sluice:0.2.0");
    assert_eq!(
        env_of(container)["OTEL_EXPORTER_OTLP_ENDPOINT"],
        "http://otel-collector:4317"
    );
    assert!(!chart.contains_key(&("Secret".to_owned(), "sluice-keys".to_owned())));
    let hpa = get(&chart, "HorizontalPodAutoscaler", "sluice");
    assert_eq!(hpa["spec"]["maxReplicas"].as_u64(), Some(4));
    // The tenants ConfigMap's name follows its content; the Deployment mounts that name.
    let (name, _) = named_like(&chart, "ConfigMap", "sluice-tenants-");
    let volumes = seq(&deploy["spec"]["template"]["spec"]["volumes"]);
    assert!(volumes
        .iter()
        .any(|v| v["configMap"]["name"].as_str() == Some(name)));
}

#[test]
fn the_redis_overlay_points_the_replicas_at_its_service() {
    let Some(objects) = render("deploy/kubernetes/with-redis") else {
        return;
    };
    let deploy = get(&objects, "Deployment", "sluice");
    let env = env_of(&seq(&deploy["spec"]["template"]["spec"]["containers"])[0]);
    let url = &env["SLUICE_REDIS_URL"];
    let svc = get(&objects, "Service", "sluice-redis");
    let port = seq(&svc["spec"]["ports"])[0]["port"].as_u64().unwrap();
    assert_eq!(url, &format!("redis://sluice-redis:{port}"));
    let redis = get(&objects, "Deployment", "sluice-redis");
    assert!(selects(
        &svc["spec"]["selector"],
        &redis["spec"]["template"]["metadata"]["labels"]
    ));
}

/// The (key, path) pairs the Deployment's ConfigMap volumes project.
fn projected_items(deploy: &Value) -> Vec<(String, String)> {
    seq(&deploy["spec"]["template"]["spec"]["volumes"])
        .iter()
        .flat_map(|v| {
            v["configMap"]["items"]
                .as_sequence()
                .cloned()
                .unwrap_or_default()
        })
        .map(|i| (s(&i["key"]).to_owned(), s(&i["path"]).to_owned()))
        .collect()
}

/// Where a path of the container lands under `root`.
fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rendered_configuration_serves_the_tenant_it_names() {
    let Some(objects) = render("deploy/kubernetes") else {
        return;
    };
    let deploy = get(&objects, "Deployment", "sluice");
    let c = &seq(&deploy["spec"]["template"]["spec"]["containers"])[0];
    let env = env_of(c);
    let root = temp_dir("deploy");
    // The ConfigMaps where the pod would see them, each key at the path its volume's `items`
    // give it.
    let items = projected_items(deploy);
    let projected: BTreeMap<&str, &str> = items
        .iter()
        .map(|(k, p)| (k.as_str(), p.as_str()))
        .collect();
    let policy_dir = under(&root, &env["SLUICE_POLICY"]);
    let tenants_file = under(&root, &env["SLUICE_TENANTS"]);
    for (map, dir) in [
        (
            get(&objects, "ConfigMap", "sluice-policies"),
            policy_dir.clone(),
        ),
        (
            named_like(&objects, "ConfigMap", "sluice-tenants-").1,
            tenants_file.parent().unwrap().to_path_buf(),
        ),
    ] {
        for (key, text) in map["data"].as_mapping().unwrap() {
            let file = dir.join(projected.get(s(key)).copied().unwrap_or(s(key)));
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, s(text)).unwrap();
        }
    }
    // The Secret's keys, filled in as an operator would.
    let secret = get(&objects, "Secret", "sluice-keys");
    let mut vars: Vec<(String, String)> = secret["stringData"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| (s(k).to_owned(), format!("key-for-{}", s(k))))
        .collect();
    vars.push(("SLUICE_TENANTS".into(), tenants_file.display().to_string()));
    for var in ["SLUICE_LARGE_URL", "SLUICE_POLICY_WATCH_SECS"] {
        vars.push((var.into(), env[var].clone()));
    }
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // Listen addresses and the model path are the test's; the rest is the Deployment's.
    let server = Server::start_policies(&policy_dir, &vars).await;
    let client = reqwest::Client::new();
    let models = |key: Option<&str>| {
        let mut req = client.get(format!("http://{}/v1/models", server.http));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        req.send()
    };
    let ok = models(Some("key-for-TEAM_A_API_KEY")).await.unwrap();
    assert_eq!(ok.status(), 200);
    let body = ok.text().await.unwrap();
    assert!(body.contains("\"default\""), "{body}");
    assert_eq!(models(None).await.unwrap().status(), 401);
    assert_eq!(models(Some("wrong")).await.unwrap().status(), 401);
    let ready = client
        .get(format!("http://{}/readyz", server.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}
