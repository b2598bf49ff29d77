//! A CRI v1 client for hack/e2e-cri: each invocation makes one call the way kubelet makes it and
//! prints the response as one line of JSON, so the script can check every answer against the
//! container's real state.
//!
//! Usage: cri-client SOCKET VERB [ARGS...] (see `usage()`).

use std::collections::HashMap;
use std::error::Error;
use std::fmt;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use tokio::net::UnixStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tonic::transport::{Channel, Endpoint, Uri};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// A usage or protocol error, printed as one line.
#[derive(Debug)]
struct Fail(String);

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for Fail {}

fn fail<T>(msg: impl Into<String>) -> Result<T> {
    Err(Box::new(Fail(msg.into())))
}

fn usage() -> &'static str {
    "usage: cri-client SOCKET VERB [ARGS...]
  version | images | image-status REF
  runp CONFIG_OUT HANDLER NAME UID LOG_DIR CGROUP_PARENT [--sysctl K=V]... [--host]
      (prints the pod id; --host: the node's network, PID and IPC namespaces, privileged)
  pod-status POD | pods | stopp POD | rmp POD
  create POD CONFIG NAME IMAGE LOG_PATH [OPTION...] -- CMD...   (prints the container id)
      options: --memory BYTES --cpu-quota N --cpu-period N --cpu-shares N --user UID
               --read-only --drop-cap CAP --seccomp-runtime-default --env K=V
               --share-pid (the pod's PID namespace, as shareProcessNamespace)
               --host (the node's namespaces, privileged: for a --host pod)
  start C | status C | containers | stats C | list-stats POD | reopen-log C
  exec-sync C TIMEOUT -- CMD...
  exec C [--tty] [--stdin] [STEP...] -- CMD...   (streaming server over websocket)
      steps, in order: s:TEXT (stdin; \\n is a newline) r:WxH (resize) w:MS (wait)
  update C [--memory BYTES] [--cpu-quota N] [--cpu-period N] [--cpu-shares N]
  stop C TIMEOUT | rm C"
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("cri-client: {}", e.to_string().replace('\n', " "));
            std::process::exit(1);
        }
    }
}

async fn connect(socket: &str) -> Result<Channel> {
    let path = socket.to_string();
    let channel = Endpoint::try_from("http://[::]:0")?
        .timeout(Duration::from_secs(120))
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await
        .map_err(|e| Fail(format!("connecting to {socket}: {e}")))?;
    Ok(channel)
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<i32> {
    println!("{}", serde_json::to_string(value)?);
    Ok(0)
}

fn status_err(verb: &str, e: tonic::Status) -> Box<dyn Error> {
    Box::new(Fail(format!("{verb}: {}: {}", e.code(), e.message())))
}

fn arg<'a>(args: &'a [String], i: usize, what: &str) -> Result<&'a str> {
    match args.get(i) {
        Some(a) => Ok(a),
        None => fail(format!("missing {what}\n{}", usage())),
    }
}

fn num(s: &str, what: &str) -> Result<i64> {
    s.parse()
        .map_err(|_| Box::new(Fail(format!("{what}: not a number: {s}"))) as Box<dyn Error>)
}

/// Splits ARGS at `--` into options and the command after it.
fn split_cmd(args: &[String]) -> Result<(&[String], Vec<String>)> {
    match args.iter().position(|a| a == "--") {
        Some(p) if p + 1 < args.len() => Ok((&args[..p], args[p + 1..].to_vec())),
        _ => fail("missing `-- CMD...`"),
    }
}

async fn run(args: &[String]) -> Result<i32> {
    let socket = arg(args, 0, "SOCKET")?;
    let verb = arg(args, 1, "VERB")?;
    let rest = &args[2..];
    let channel = connect(socket).await?;
    let mut rt = RuntimeServiceClient::new(channel.clone());
    let mut img = ImageServiceClient::new(channel);
    let id = |i: usize| arg(rest, i, "ID").map(str::to_string);
    match verb {
        "version" => {
            let r = rt
                .version(VersionRequest {
                    version: "v1".into(),
                })
                .await;
            print_json(&r.map_err(|e| status_err(verb, e))?.into_inner())
        }
        "images" => {
            let r = img.list_images(ListImagesRequest { filter: None }).await;
            print_json(&r.map_err(|e| status_err(verb, e))?.into_inner())
        }
        "image-status" => {
            let req = ImageStatusRequest {
                image: Some(ImageSpec {
                    image: id(0)?,
                    ..Default::default()
                }),
                verbose: false,
            };
            let r = img.image_status(req).await;
            print_json(&r.map_err(|e| status_err(verb, e))?.into_inner())
        }
        "runp" => {
            let config = pod_config(rest)?;
            std::fs::write(arg(rest, 0, "CONFIG_OUT")?, serde_json::to_vec(&config)?)?;
            let req = RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: arg(rest, 1, "HANDLER")?.to_string(),
            };
            let r = rt
                .run_pod_sandbox(req)
                .await
                .map_err(|e| status_err(verb, e))?;
            println!("{}", r.into_inner().pod_sandbox_id);
            Ok(0)
        }
        "pod-status" => {
            let req = PodSandboxStatusRequest {
                pod_sandbox_id: id(0)?,
                verbose: false,
            };
            let r = rt.pod_sandbox_status(req).await;
            print_json(&r.map_err(|e| status_err(verb, e))?.into_inner())
        }
        "pods" => {
            let r = rt
                .list_pod_sandbox(ListPodSandboxRequest { filter: None })
                .await;
            print_json(&r.map_err(|e| status_err(verb, e))?.into_inner())
        }
        "stopp" => {
            let r = rt
                .stop_pod_sandbox(StopPodSandboxRequest {
                    pod_sandbox_id: id(0)?,
                })
                .await;
            print_json(&r.map_err(|e| status_err(verb, e))?.into_inner())
        }
        "rmp" => {
            let r = rt
                .remove_pod_sandbox(RemovePodSandboxRequest {
                    pod_sandbox_id: id(0)?,
                })
                .await;
            print_json(&r.map_err(|e| status_err(verb, e))?.into_inner())
        }
        "create" => {
            let req = create_request(rest)?;
            let r = rt
                .create_container(req)
                .await
                .map_err(|e| status_err(verb, e))?;
            println!("{}", r.into_inner().container_id);
            Ok(0)
        }
        "start" => {
            let r = rt
                .start_container(StartContainerRequest {
                    container_id: id(0)?,
                })
                .await;
            print_json(&r.map_err(|e| status_err(verb, e))?.into_inner())
        }
        "status" => {
            let req = ContainerStatusRequest {
                container_id: id(0)?,
                verbose: false,
            };
            let r = rt.container_status(req).await;
            print_json(&r.map_err(|e| status_err(verb, e))?.into_inner())
        }
        "containers" => {
            let r = rt
                .list_containers(ListContainersRequest { filter: None })
                .await;
            print_json(&r.map_err(|e| status_err(verb, e))?.into_inner())
        }
        "stats" => {
            let r = rt
                .container_stats(ContainerStatsRequest {
                    container_id: id(0)?,
                })
                .await;
            print_json(&r.map_err(|e| status_err(verb, e))?.into_inner())
        }
        "list-stats" => {
            let filter = ContainerStatsFilter {
                pod_sandbox_id: id(0)?,
                ..Default::default()
            };
            let req = ListContainerStatsRequest {
                filter: Some(filter),
            };
            let r = rt.list_container_stats(req).await;
            print_json(&r.map_err(|e| status_err(verb, e))?.into_inner())
        }
        "reopen-log" => {
            let r = rt
                .reopen_container_log(ReopenContainerLogRequest {
                    container_id: id(0)?,
                })
                .await;
            print_json(&r.map_err(|e| status_err(verb, e))?.into_inner())
        }
        "exec-sync" => {
            let (opts, cmd) = split_cmd(rest)?;
            let req = ExecSyncRequest {
                container_id: arg(opts, 0, "ID")?.to_string(),
                cmd,
                timeout: num(arg(opts, 1, "TIMEOUT")?, "TIMEOUT")?,
            };
            let r = rt
                .exec_sync(req)
                .await
                .map_err(|e| status_err(verb, e))?
                .into_inner();
            print_json(&serde_json::json!({
                "exit_code": r.exit_code,
                "stdout": String::from_utf8_lossy(&r.stdout),
                "stderr": String::from_utf8_lossy(&r.stderr),
            }))
        }
        "exec" => exec(&mut rt, rest).await,
        "update" => {
            let mut linux = LinuxContainerResources::default();
            if let Some(extra) = resource_options(&rest[1.min(rest.len())..], &mut linux)?.first() {
                return fail(format!("update: unknown option {}", extra[0]));
            }
            let req = UpdateContainerResourcesRequest {
                container_id: id(0)?,
                linux: Some(linux),
                ..Default::default()
            };
            let r = rt.update_container_resources(req).await;
            print_json(&r.map_err(|e| status_err(verb, e))?.into_inner())
        }
        "stop" => {
            let req = StopContainerRequest {
                container_id: id(0)?,
                timeout: num(arg(rest, 1, "TIMEOUT")?, "TIMEOUT")?,
            };
            let r = rt.stop_container(req).await;
            print_json(&r.map_err(|e| status_err(verb, e))?.into_inner())
        }
        "rm" => {
            let r = rt
                .remove_container(RemoveContainerRequest {
                    container_id: id(0)?,
                })
                .await;
            print_json(&r.map_err(|e| status_err(verb, e))?.into_inner())
        }
        _ => fail(format!("unknown verb {verb}\n{}", usage())),
    }
}

/// The pod as kubelet describes a pod with a pod-level network, IPC and PID namespace
/// (NamespaceMode POD everywhere), its logs under LOG_DIR and its cgroup under CGROUP_PARENT.
fn pod_config(rest: &[String]) -> Result<PodSandboxConfig> {
    let name = arg(rest, 2, "NAME")?;
    let uid = arg(rest, 3, "UID")?;
    let mut sysctls = HashMap::new();
    let mut host = false;
    let mut extra = rest[6.min(rest.len())..].iter();
    while let Some(flag) = extra.next() {
        if flag == "--host" {
            host = true;
            continue;
        }
        let kv = match (flag.as_str(), extra.next()) {
            ("--sysctl", Some(kv)) => kv,
            _ => return fail(format!("runp: unexpected {flag}")),
        };
        let Some((k, v)) = kv.split_once('=') else {
            return fail(format!("--sysctl {kv}: not K=V"));
        };
        sysctls.insert(k.to_string(), v.to_string());
    }
    let mode = if host {
        NamespaceMode::Node
    } else {
        NamespaceMode::Pod
    } as i32;
    let namespaces = NamespaceOption {
        network: mode,
        pid: mode,
        ipc: mode,
        ..Default::default()
    };
    Ok(PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.to_string(),
            uid: uid.to_string(),
            namespace: "e2e".to_string(),
            attempt: 0,
        }),
        // On the node's UTS namespace the pod has the node's name: a hostname would be refused.
        hostname: if host {
            String::new()
        } else {
            name.to_string()
        },
        log_directory: arg(rest, 4, "LOG_DIR")?.to_string(),
        labels: HashMap::from([("e2e-cri".to_string(), name.to_string())]),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: arg(rest, 5, "CGROUP_PARENT")?.to_string(),
            sysctls,
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(namespaces),
                privileged: host,
                seccomp: Some(SecurityProfile {
                    profile_type: security_profile::ProfileType::RuntimeDefault as i32,
                    localhost_ref: String::new(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// Applies --memory/--cpu-quota/--cpu-period/--cpu-shares from OPTS; returns the options it did
/// not know.
fn resource_options<'a>(
    opts: &'a [String],
    res: &mut LinuxContainerResources,
) -> Result<Vec<&'a [String]>> {
    let mut unknown = Vec::new();
    let mut i = 0;
    while i < opts.len() {
        let value = || arg(opts, i + 1, &opts[i]);
        match opts[i].as_str() {
            "--memory" => res.memory_limit_in_bytes = num(value()?, "--memory")?,
            "--cpu-quota" => res.cpu_quota = num(value()?, "--cpu-quota")?,
            "--cpu-period" => res.cpu_period = num(value()?, "--cpu-period")?,
            "--cpu-shares" => res.cpu_shares = num(value()?, "--cpu-shares")?,
            _ => {
                unknown.push(&opts[i..i + 1]);
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    Ok(unknown)
}

fn create_request(rest: &[String]) -> Result<CreateContainerRequest> {
    let (opts, cmd) = split_cmd(rest)?;
    let pod_id = arg(opts, 0, "POD")?.to_string();
    let pod: PodSandboxConfig = serde_json::from_slice(&std::fs::read(arg(opts, 1, "CONFIG")?)?)?;
    let name = arg(opts, 2, "NAME")?;
    let image = arg(opts, 3, "IMAGE")?;
    let log_path = arg(opts, 4, "LOG_PATH")?;
    let mut resources = LinuxContainerResources::default();
    let mut security = LinuxContainerSecurityContext {
        namespace_options: Some(NamespaceOption {
            network: NamespaceMode::Pod as i32,
            pid: NamespaceMode::Container as i32,
            ipc: NamespaceMode::Pod as i32,
            ..Default::default()
        }),
        ..Default::default()
    };
    // kubelet's default proc mount: it always sends these (containerd uses what it is sent).
    security.masked_paths = [
        "/proc/asound",
        "/proc/acpi",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
    ]
    .map(String::from)
    .to_vec();
    security.readonly_paths = [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ]
    .map(String::from)
    .to_vec();
    let mut envs = Vec::new();
    let mut drop = Vec::new();
    let flags = resource_options(&opts[5.min(opts.len())..], &mut resources)?;
    let mut it = flags.iter().map(|f| f[0].as_str());
    // The value of a flag that takes one is the next unknown item.
    while let Some(flag) = it.next() {
        let mut value = || match it.next() {
            Some(v) => Ok(v.to_string()),
            None => fail(format!("{flag} needs a value")),
        };
        match flag {
            "--user" => {
                security.run_as_user = Some(Int64Value {
                    value: num(&value()?, flag)?,
                })
            }
            "--read-only" => security.readonly_rootfs = true,
            "--host" => {
                security.privileged = true;
                security.namespace_options = Some(NamespaceOption {
                    network: NamespaceMode::Node as i32,
                    pid: NamespaceMode::Node as i32,
                    ipc: NamespaceMode::Node as i32,
                    ..Default::default()
                });
            }
            "--share-pid" => {
                if let Some(ns) = security.namespace_options.as_mut() {
                    ns.pid = NamespaceMode::Pod as i32;
                }
            }
            "--drop-cap" => drop.push(value()?),
            "--seccomp-runtime-default" => {
                security.seccomp = Some(SecurityProfile {
                    profile_type: security_profile::ProfileType::RuntimeDefault as i32,
                    localhost_ref: String::new(),
                })
            }
            "--env" => {
                let kv = value()?;
                let Some((k, v)) = kv.split_once('=') else {
                    return fail(format!("--env {kv}: not K=V"));
                };
                envs.push(KeyValue {
                    key: k.to_string(),
                    value: v.to_string(),
                });
            }
            _ => return fail(format!("unknown option {flag}")),
        }
    }
    if !drop.is_empty() {
        security.capabilities = Some(Capability {
            drop_capabilities: drop,
            ..Default::default()
        });
    }
    Ok(CreateContainerRequest {
        pod_sandbox_id: pod_id,
        config: Some(ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.to_string(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: image.to_string(),
                ..Default::default()
            }),
            command: cmd,
            envs,
            log_path: log_path.to_string(),
            labels: HashMap::from([("e2e-cri".to_string(), name.to_string())]),
            linux: Some(LinuxContainerConfig {
                resources: Some(resources),
                security_context: Some(security),
            }),
            ..Default::default()
        }),
        sandbox_config: Some(pod),
    })
}

/// Exec through the streaming server, as `kubectl exec` reaches it through the API server: the
/// Exec call returns a URL, spoken to over a websocket with the channel.k8s.io v4 protocol (one
/// leading byte per message names the stream: 0 stdin, 1 stdout, 2 stderr, 3 status, 4 resize).
async fn exec(rt: &mut RuntimeServiceClient<Channel>, rest: &[String]) -> Result<i32> {
    let (opts, cmd) = split_cmd(rest)?;
    let container_id = arg(opts, 0, "ID")?.to_string();
    let tty = opts.iter().any(|o| o == "--tty");
    let stdin = opts.iter().any(|o| o == "--stdin");
    let steps: Vec<&String> = opts[1..].iter().filter(|o| !o.starts_with("--")).collect();
    let req = ExecRequest {
        container_id,
        cmd,
        tty,
        stdin,
        stdout: true,
        stderr: !tty,
    };
    let url = rt
        .exec(req)
        .await
        .map_err(|e| status_err("exec", e))?
        .into_inner()
        .url;
    let ws_url = match url.strip_prefix("http://") {
        Some(rest) => format!("ws://{rest}"),
        None => return fail(format!("exec: unexpected streaming URL {url}")),
    };
    let mut request = ws_url.as_str().into_client_request()?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("v4.channel.k8s.io"),
    );
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| Fail(format!("exec: websocket to {ws_url}: {e}")))?;
    let (mut tx, mut rx) = ws.split();
    let reader = tokio::spawn(async move {
        let mut out = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
        while let Some(msg) = rx.next().await {
            let data = match msg {
                Ok(Message::Binary(d)) => d.to_vec(),
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => continue,
            };
            if let Some((&ch, payload)) = data.split_first() {
                if let Some(buf) = out.get_mut(ch as usize) {
                    buf.extend_from_slice(payload);
                }
            }
        }
        out
    });
    for step in steps {
        let (kind, value) = step.split_at(2.min(step.len()));
        let frame = match kind {
            "s:" => {
                let mut f = vec![0u8];
                f.extend_from_slice(value.replace("\\n", "\n").as_bytes());
                f
            }
            "r:" => {
                let Some((w, h)) = value.split_once('x') else {
                    return fail(format!("exec: resize step {step}: not r:WxH"));
                };
                let mut f = vec![4u8];
                f.extend_from_slice(
                    format!("{{\"Width\":{},\"Height\":{}}}", num(w, "W")?, num(h, "H")?)
                        .as_bytes(),
                );
                f
            }
            "w:" => {
                tokio::time::sleep(Duration::from_millis(num(value, "MS")? as u64)).await;
                continue;
            }
            _ => return fail(format!("exec: unknown step {step}")),
        };
        tx.send(Message::binary(frame)).await?;
    }
    let out = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .map_err(|_| Fail("exec: the stream did not end within 60s".into()))??;
    let status: serde_json::Value = if out[3].is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&out[3])?
    };
    // v4 status: Success, or Failure with the exit code as the ExitCode cause.
    let exit_code = match status["status"].as_str() {
        Some("Success") => 0,
        _ => status["details"]["causes"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["reason"] == "ExitCode"))
            .and_then(|c| c["message"].as_str())
            .and_then(|m| m.parse::<i64>().ok())
            .unwrap_or(-1),
    };
    print_json(&serde_json::json!({
        "exit_code": exit_code,
        "stdout": String::from_utf8_lossy(&out[1]),
        "stderr": String::from_utf8_lossy(&out[2]),
        "status": status,
    }))
}
