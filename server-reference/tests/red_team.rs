//! Attacks from inside a session's sandbox, run by the agent's own bash tool (a real OpenCode in
//! real bubblewrap, driven by the scripted model), as `docs/security.md` lists them. Every probe
//! has a control: the same probe succeeding where it should, so none passes because the probe
//! itself is broken.

mod support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use proliferate_core::protocol::v1::*;
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

/// OpenCode may use every tool anywhere: the sandbox, not the agent's policy, is the boundary.
const ALLOW_ALL: &str =
    r#"{"bash":"allow","external_directory":"allow","read":"allow","edit":"allow"}"#;

/// Runs `command` with the agent's bash tool in `session`; returns its output.
async fn run(api: &Api, session: &str, command: &str) -> String {
    assert!(!command.contains("]]"), "a marker argument ends at ]]");
    let prompt_id = format!("prm_{}", uuid::Uuid::new_v4().simple());
    let after = api.session(session).await.head_seq;
    api.prompt(session, &prompt_id, &format!("[[bash:{command}]]"))
        .await;
    let mut cursor = after;
    let mut output = None;
    for _ in 0..1200 {
        let (status, body) = api
            .call(
                Method::GET,
                &format!("/v1/sessions/{session}/events?after_seq={cursor}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let events: Vec<EventEnvelope> = serde_json::from_value(body["events"].clone()).unwrap();
        for envelope in events {
            cursor = envelope.seq;
            match envelope.event {
                Event::ToolCompleted(done) if done.tool == "bash" => output = Some(done.output),
                Event::ToolFailed(failed) if failed.tool == "bash" => {
                    output = Some(format!("TOOL FAILED: {}", failed.error))
                }
                Event::AgentError(error) => {
                    output = Some(format!("AGENT ERROR {}: {}", error.kind, error.message))
                }
                Event::TurnCancelled(turn) if turn.prompt_id == prompt_id => {
                    return output.unwrap_or_else(|| "TURN CANCELLED".into());
                }
                Event::TurnCompleted(turn) if turn.prompt_id == prompt_id => {
                    return output.unwrap_or_else(|| panic!("no bash output for {command:?}"));
                }
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the command {command:?} never finished");
}

/// Ports listening on the host, from its `/proc/net/tcp` and `/proc/net/tcp6`.
fn host_listening_ports() -> BTreeSet<u16> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let port = fields.get(1)?.rsplit_once(':')?.1;
                    (fields.get(3) == Some(&"0A")).then(|| u16::from_str_radix(port, 16).ok())?
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The ports a bash loop inside the sandbox can open on `address`.
async fn open_ports(
    api: &Api,
    session: &str,
    address: &str,
    ports: &BTreeSet<u16>,
) -> BTreeSet<u16> {
    let list: Vec<String> = ports.iter().map(u16::to_string).collect();
    let output = run(
        api,
        session,
        &format!(
            "for p in {}; do (exec 3<>/dev/tcp/{address}/$p) 2>/dev/null && echo OPEN $p; done; echo scanned",
            list.join(" ")
        ),
    )
    .await;
    assert!(output.contains("scanned"), "{output}");
    output
        .lines()
        .filter_map(|line| line.strip_prefix("OPEN ")?.trim().parse().ok())
        .collect()
}

async fn create(api: &Api, body: Value) -> SessionInfo {
    let (status, body) = api.call(Method::POST, "/v1/sessions", Some(body)).await;
    assert_eq!(status, 201, "{body}");
    serde_json::from_value(body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_reaches_no_other_session_no_host_service_and_no_secret() {
    reaches_nothing_but_its_own(&TestServer::start(&["--permission", ALLOW_ALL])).await;
}

/// The same attacks on a gateway that runs as an unprivileged user (`nobody` when the tests run
/// as root): isolation does not depend on the gateway's privileges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_of_an_unprivileged_gateway_reaches_nothing_either() {
    let server = TestServer::start_unprivileged(&["--permission", ALLOW_ALL]);
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(server.data_dir.join("proliferate.db"))
        .unwrap()
        .uid();
    assert_ne!(owner, 0, "control: the gateway does not run as root");
    reaches_nothing_but_its_own(&server).await;
    // Without a control group it may create, it says which limits hold.
    let api = Api::new(&server, &token("ada", "acme"));
    let session = api.create_session().await;
    let info = api
        .wait_for_status(&session.id, SessionStatus::Running)
        .await;
    let enforced = info
        .limits
        .and_then(|limits| limits.enforced_by)
        .unwrap_or_default();
    assert!(enforced.contains("not enforced"), "{enforced}");
}

async fn reaches_nothing_but_its_own(server: &TestServer) {
    std::fs::write(server.data_dir.join("probe-secret"), "DATA-DIR-MARKER").unwrap();
    let acme = Api::new(server, &token("ada", "acme"));
    let globex = Api::new(server, &token("bob", "globex"));
    let ours = create(&acme, json!({})).await;
    let theirs = create(&globex, json!({})).await;
    // Both agents run; the other organisation's holds a private file.
    let private = run(
        &globex,
        &theirs.id,
        "echo GLOBEX-PRIVATE > private.txt && cat private.txt",
    )
    .await;
    assert!(private.contains("GLOBEX-PRIVATE"), "{private}");

    // Control: the sandbox's own agent and proxy listen on its own loopback, and the scan sees them.
    let host_ports = host_listening_ports();
    let mut probed: BTreeSet<u16> = host_ports.clone();
    probed.extend([4096, 3128]);
    let open = open_ports(&acme, &ours.id, "127.0.0.1", &probed).await;
    assert!(
        open.contains(&4096) && open.contains(&3128),
        "control: {open:?}"
    );
    // The host's listeners (the gateway, the other agent's bridge, PostgreSQL, Redis...) are not
    // reachable: the only open ports are the sandbox's own and the forwarded model.
    let gateway_port: u16 = server.base.rsplit(':').next().unwrap().parse().unwrap();
    assert!(
        host_ports.contains(&gateway_port),
        "control: the host scan sees the gateway"
    );
    for port in [gateway_port, 5432, 6379] {
        if host_ports.contains(&port) {
            assert!(
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
                "control: {port}"
            );
        }
    }
    let reachable: Vec<u16> = open
        .difference(&BTreeSet::from([4096, 3128]))
        .copied()
        .collect();
    assert!(
        reachable.len() <= 1,
        "only the model may be forwarded: {reachable:?}"
    );
    assert!(!open.contains(&gateway_port) && !open.contains(&5432) && !open.contains(&6379));

    // No address of the host works either: the sandbox has no route off its loopback.
    let routes = run(
        &acme,
        &ours.id,
        "cat /proc/net/route | wc -l; ip -o addr 2>/dev/null; cat /proc/net/dev | grep -c :",
    )
    .await;
    assert!(
        routes.lines().next() == Some("1"),
        "only the header of an empty routing table: {routes}"
    );
    let outside = run(&acme, &ours.id, &format!(
        "curl -s -m 5 --noproxy '*' -o /dev/null -w '%{{http_code}}' http://10.0.2.2:{gateway_port}/healthz; echo \" exit=$?\""
    )).await;
    assert!(
        outside.contains("exit=7"),
        "no route to any other address: {outside}"
    );

    // The other session's files, the data directory and the gateway's secrets do not exist inside.
    let data_dir = server.data_dir.display().to_string();
    let files = run(&acme, &ours.id, &format!(
        "cat {data_dir}/probe-secret; ls {data_dir}/sessions; cat /etc/shadow; ls /run /var /home; echo OWN > own.txt; cat own.txt; cat /etc/os-release | head -1"
    )).await;
    assert!(
        files.contains("OWN") && files.contains("NAME="),
        "control: own files and /etc/os-release read: {files}"
    );
    for leaked in [
        "DATA-DIR-MARKER",
        "GLOBEX-PRIVATE",
        "root:",
        theirs.id.as_str(),
    ] {
        assert!(!files.contains(leaked), "{leaked} leaked: {files}");
    }
    // The gateway's secrets, searched for by a pattern the command carries only in base64 (the
    // agent's own history stores the command).
    let encoded = |secret: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(secret)
    };
    let secret = run(&acme, &ours.id, &format!(
        "J=$(echo {} | base64 -d); S=$(echo {} | base64 -d); \
         grep -rl -e \"$J\" -e \"$S\" /home /tmp /run /etc /root /var 2>/dev/null | head -3; \
         echo environ $(cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c -e \"$J\" -e \"$S\"); \
         echo own $(cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c OPENCODE_SERVER_PASSWORD)",
        encoded(SECRET),
        encoded(SERVICE_SECRET)
    )).await;
    assert!(
        !secret.contains('/'),
        "a file holds a gateway secret: {secret}"
    );
    assert!(
        secret.contains("environ 0"),
        "a process environment holds a gateway secret: {secret}"
    );
    let own: u32 = secret
        .lines()
        .find_map(|line| line.strip_prefix("own "))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        own > 0,
        "control: the agent's own password is found: {secret}"
    );

    // Processes: only the sandbox's own, no gateway and no other agent.
    let processes = run(
        &acme,
        &ours.id,
        "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done",
    )
    .await;
    assert!(
        processes.contains("opencode"),
        "control: the agent is visible: {processes}"
    );
    assert!(!processes.contains("proliferate-server serve") && !processes.contains(&theirs.id));

    // Privilege: no mount, unmount, remount, new namespace or tracing.
    // Each call goes straight to the kernel (through libc), so a refusal is the kernel's.
    let calls = "import ctypes; c = ctypes.CDLL(None, use_errno=True)\n\
        def probe(name, result): print(name, result, ctypes.get_errno())\n\
        probe(\"getpid\", c.getpid() * 0)\n\
        probe(\"mount\", c.mount(b\"none\", b\"/tmp\", b\"tmpfs\", 0, None))\n\
        probe(\"umount\", c.umount2(b\"/home/agent/workspace\", 2))\n\
        probe(\"remount\", c.mount(None, b\"/usr\", None, 32, None))\n\
        probe(\"userns\", c.unshare(0x10000000))\n\
        probe(\"netns\", c.unshare(0x40000000))\n\
        probe(\"ptrace\", c.ptrace(16, 1, None, None))";
    let privileged = run(&acme, &ours.id, &format!(
        "printf '{calls}' > /tmp/probe.py && python3 /tmp/probe.py; echo x > /usr/probe 2>&1; id -u; \
         grep -E 'CapEff|NoNewPrivs|Seccomp:' /proc/self/status; cat own.txt"
    )).await;
    assert!(
        privileged.contains("getpid 0 0"),
        "control: the probe reaches the kernel: {privileged}"
    );
    assert!(
        privileged.contains("OWN"),
        "control: the workspace is still mounted: {privileged}"
    );
    for call in ["mount", "umount", "remount", "userns", "netns", "ptrace"] {
        assert!(
            privileged.contains(&format!("{call} -1 1\n")),
            "{call} was not refused with EPERM: {privileged}"
        );
    }
    assert!(privileged.contains("1000") && privileged.contains("CapEff:\t0000000000000000"));
    assert!(
        privileged.contains("NoNewPrivs:\t1") && privileged.contains("Seccomp:\t2"),
        "{privileged}"
    );
    assert!(privileged.contains("Read-only file system"), "{privileged}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_leaves_only_through_the_proxy_to_allowed_hosts() {
    let allowed = TcpListener::bind("127.0.0.1:0").unwrap();
    let allowed_port = allowed.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in allowed.incoming().flatten() {
            let mut request = [0; 1024];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\nConnection: close\r\n\r\nALLOWED-ANSWER",
            );
        }
    });
    let allow = format!("127.0.0.1:{allowed_port}");
    let server = TestServer::start(&["--permission", ALLOW_ALL, "--egress-allow", &allow]);
    let api = Api::new(&server, &token("ada", "acme"));
    let session = create(&api, json!({})).await;
    let gateway_port = server.base.rsplit(':').next().unwrap();
    let output = run(
        &api,
        &session.id,
        &format!(
            "unset NO_PROXY no_proxy; P=http://127.0.0.1:3128; \
         curl -s -m 10 -x $P -p http://127.0.0.1:{allowed_port}/; echo \" A=$?\"; \
         curl -s -m 10 -x $P -p http://127.0.0.1:{gateway_port}/healthz; echo \" B=$?\"; \
         curl -s -m 10 -x $P -p http://127.0.0.1:5432/; echo \" C=$?\"; \
         curl -s -m 10 -x $P -p http://localhost:{allowed_port}/; echo \" D=$?\"; \
         curl -s -m 10 --noproxy '*' http://127.0.0.1:{allowed_port}/; echo \" E=$?\"; \
         curl -s -m 10 -x $P -w '%{{http_code}}' http://127.0.0.1:{allowed_port}/; echo \" F=$?\""
        ),
    )
    .await;
    // Control: the allowed host answers through the proxy.
    assert!(output.contains("ALLOWED-ANSWER A=0"), "{output}");
    // The gateway, PostgreSQL and a name that resolves to loopback are refused by the proxy; the
    // allowed host is unreachable without it; plain-HTTP proxying is refused.
    for refused in ["B=56", "C=56", "D=56"] {
        assert!(output.contains(refused), "{refused}: {output}");
    }
    assert!(output.contains("E=7"), "{output}");
    assert!(output.contains("405 F=0"), "{output}");

    // A client cannot open the host's services to its own agent: the bus, the database, the
    // gateway, as literals in its session's allow-list. Control: a public name is taken.
    for host in [
        "127.0.0.1:6379",
        "127.0.0.1:5432",
        "::1",
        "10.0.0.1",
        "169.254.169.254",
    ] {
        let body = json!({"egress_allow": [host]});
        let (status, answer) = api
            .call(reqwest::Method::POST, "/v1/sessions", Some(body))
            .await;
        assert_eq!(status, 400, "{host}: {answer}");
        assert!(answer.to_string().contains("non-public"), "{answer}");
    }
    let body = json!({"egress_allow": ["example.com:443", "93.184.215.14"]});
    let (status, answer) = api
        .call(reqwest::Method::POST, "/v1/sessions", Some(body))
        .await;
    assert_eq!(status, 201, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_over_its_limits_harms_neither_the_gateway_nor_another_session() {
    let mut server = TestServer::start(&["--permission", ALLOW_ALL]);
    let api = Api::new(&server, &token("ada", "acme"));
    let limits =
        json!({"memory_bytes": 768u64 << 20, "processes": 200, "disk_bytes": 256u64 << 20});
    let hog = create(&api, json!({"limits": limits})).await;
    let bystander = create(&api, json!({})).await;
    let info = api.wait_for_status(&hog.id, SessionStatus::Running).await;
    let enforced = info
        .limits
        .clone()
        .and_then(|limits| limits.enforced_by)
        .unwrap_or_default();
    assert!(
        enforced.starts_with("cgroup"),
        "limits enforced by a control group: {info:?}"
    );
    assert_eq!(info.limits.unwrap().memory_bytes, Some(768 << 20));

    // Above the server's limit is refused with a clear error.
    let (status, body) = api
        .call(
            Method::POST,
            "/v1/sessions",
            Some(json!({"limits": {"memory_bytes": 1u64 << 50}})),
        )
        .await;
    assert_eq!(status, 400, "{body}");

    // Control: modest use works. Then memory far past the limit: the hog is killed, not the host.
    let modest = run(
        &api,
        &hog.id,
        "python3 -c 'b = bytearray(64 << 20); print(\"ALLOCATED\", len(b))'",
    )
    .await;
    assert!(modest.contains("ALLOCATED"), "{modest}");
    let greedy = run(
        &api,
        &hog.id,
        "python3 -c 'b = b\"x\" * (3 << 30); print(\"ALLOCATED\", len(b))'; echo exit=$?",
    )
    .await;
    assert!(
        !greedy.contains("ALLOCATED") && !greedy.contains("exit=0"),
        "{greedy}"
    );

    // Control: a few processes start. Then a fork storm stops at the limit.
    let few = run(
        &api,
        &hog.id,
        "for i in $(seq 10); do sleep 1 & done; wait; echo FEW-OK",
    )
    .await;
    assert!(few.contains("FEW-OK"), "{few}");
    // The storm's forks are refused; or the agent, sharing the limit, cannot start a thread and
    // stops, and the gateway says which limit. The session then resumes with its sandbox intact.
    let storm = run(&api, &hog.id, "for i in $(seq 400); do sleep 20 & done 2>&1 | grep -c -i -e 'resource temporarily unavailable' -e 'cannot fork'; echo storm-done").await;
    if storm.starts_with("AGENT ERROR") {
        assert!(
            storm.contains("limit_exceeded: the sandbox ran out of processes"),
            "{storm}"
        );
        api.wait_for_status(&hog.id, SessionStatus::Failed).await;
        let (status, body) = api
            .call(
                Method::POST,
                &format!("/v1/sessions/{}/resume", hog.id),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        api.wait_for_status(&hog.id, SessionStatus::Running).await;
    } else {
        assert!(storm.contains("storm-done"), "{storm}");
        let refused: u32 = storm
            .lines()
            .next()
            .unwrap_or("0")
            .trim()
            .parse()
            .unwrap_or(0);
        assert!(refused > 0, "forks past the limit were refused: {storm}");
    }

    // Control: a file of 32 MiB is written. Then files past the session's 256 MiB disk: the
    // tool gets ENOSPC, or the agent fails for want of room (its own database shares the disk)
    // and says which limit; either way the disk holds no more and the host's is not touched.
    let host_free = || {
        let stats = nix::sys::statvfs::statvfs(&server.data_dir).unwrap();
        stats.blocks_available() * stats.fragment_size()
    };
    let host_before = host_free();
    let small = run(
        &api,
        &hog.id,
        "dd if=/dev/zero of=small bs=1M count=32 2>&1 | tail -1; ls -s small",
    )
    .await;
    assert!(small.contains("32768 small"), "{small}");
    let filling = run(&api, &hog.id, "for i in 1 2 3 4 5 6 7 8; do dd if=/dev/zero of=fill$i bs=1M count=64 2>&1 | grep -o 'No space left on device'; done | sort -u").await;
    assert!(
        filling.contains("No space left on device") || filling.contains("limit_exceeded"),
        "{filling}"
    );
    let disk =
        nix::sys::statvfs::statvfs(&server.data_dir.join(format!("sessions/{}/disk", hog.id)))
            .unwrap();
    assert!(
        disk.blocks() * disk.fragment_size() <= 256 << 20,
        "the session's disk is its limit"
    );
    let lost = host_before.saturating_sub(host_free()) >> 20;
    assert!(lost < 384, "the host's disk lost {lost} MiB");

    // The gateway and the other session are unaffected.
    let (status, _) = api.call(Method::GET, "/healthz", None).await;
    assert_eq!(status, 200);
    let fine = run(&api, &bystander.id, "echo BYSTANDER-OK").await;
    assert!(fine.contains("BYSTANDER-OK"), "{fine}");

    // A stopped server leaves no session's disk mounted.
    let data_dir = server.data_dir.display().to_string();
    let mounted = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|line| line.contains(&data_dir))
            .count()
    };
    assert!(
        mounted() > 0,
        "control: the session's disk is mounted while it runs"
    );
    server.terminate();
    assert_eq!(mounted(), 0, "disks left mounted after the server stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_taken_while_the_agent_swaps_links_leaks_nothing() {
    let server = TestServer::start(&["--permission", ALLOW_ALL]);
    let outside = server.data_dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "OUTSIDE-MARKER").unwrap();
    let api = Api::new(&server, &token("ada", "acme"));
    let session = create(&api, json!({})).await;
    // The agent links names to host paths (outside the sandbox they name the data directory) and
    // keeps swapping a folder for such a link in the background.
    let target = outside.display().to_string();
    let setup = run(&api, &session.id, &format!(
        "echo WORKSPACE-MARKER > kept.txt; ln -s {target} link; ln -s {target}/secret.txt file-link; mkdir sub; \
         (while true; do mv sub sub.d; ln -s {target} sub; rm sub; mv sub.d sub; done) > /dev/null 2>&1 & echo swapping"
    )).await;
    assert!(setup.contains("swapping"), "{setup}");
    let mut snapshots = Vec::new();
    for _ in 0..5 {
        let (status, body) = api
            .call(
                Method::POST,
                &format!("/v1/sessions/{}/snapshot", session.id),
                None,
            )
            .await;
        assert_eq!(status, 201, "{body}");
        snapshots.push(body["snapshot_id"].as_str().unwrap().to_owned());
    }
    for snapshot in &snapshots {
        let archive =
            std::fs::read(server.data_dir.join(format!("snapshots/{snapshot}.tar.gz"))).unwrap();
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(&archive[..])
            .read_to_end(&mut bytes)
            .unwrap();
        let contents = String::from_utf8_lossy(&bytes);
        assert!(
            contents.contains("WORKSPACE-MARKER"),
            "control: the workspace is in the snapshot"
        );
        assert!(
            !contents.contains("OUTSIDE-MARKER"),
            "a host file leaked into {snapshot}"
        );
    }
    // A session restored from it, in another organisation's hands, is refused; in ours it holds
    // the workspace and no host file.
    let (status, _) = Api::new(&server, &token("bob", "globex"))
        .call(
            Method::POST,
            "/v1/sessions",
            Some(json!({"snapshot_id": snapshots[0]})),
        )
        .await;
    assert_eq!(status, 404, "snapshots are bound to their organisation");
    let restored = create(&api, json!({"snapshot_id": snapshots[4]})).await;
    let inside = run(&api, &restored.id, "cat kept.txt; cat link/secret.txt file-link 2>&1; grep -r OUTSIDE-MARKER . 2>/dev/null; echo checked").await;
    assert!(
        inside.contains("WORKSPACE-MARKER") && inside.contains("checked"),
        "{inside}"
    );
    assert!(!inside.contains("OUTSIDE-MARKER"), "{inside}");
}
