use std::io::Write;

use super::*;
use crate::datastore::PoolSnapshot;

const FILE: &str = r#"
poolName: chat
targetPorts: [8000]
endpoints:
- name: a
  address: 10.0.0.1
  labels: {inference.networking.k8s.io/engine-type: sglang}
- name: b
  address: 10.0.0.2:9001
- name: c
  address: "[fd00::3]:9002"
  ready: false
objectives:
- {name: critical, priority: 10}
- {name: batch, priority: -1}
rewrites:
- name: canary
  rules:
  - matches: [{model: {value: llama}}]
    targets: [{modelRewrite: llama-v2, weight: 90}, {modelRewrite: llama-v3, weight: 10}]
"#;

#[test]
fn a_full_file_becomes_pool_state_and_endpoints() {
    let state = parse(FILE, "ignored").unwrap();
    assert_eq!(state.pool_name, "chat");
    assert_eq!(state.target_ports, [8000, 9001, 9002]);
    assert_eq!(state.objectives["critical"], 10);
    assert_eq!(state.objectives["batch"], -1);
    assert_eq!(state.rewrites.len(), 1);
    assert_eq!(state.rewrites[0].pool_ref.name, "chat");
    let (snapshot, errors) = PoolSnapshot::default().apply(&state);
    assert!(errors.is_empty(), "{errors:?}");
    let endpoints: Vec<(String, String)> = snapshot
        .endpoints
        .iter()
        .map(|e| (e.name.to_string(), e.address.to_string()))
        .collect();
    assert_eq!(
        endpoints,
        [
            ("a-rank-0".to_owned(), "10.0.0.1:8000".to_owned()),
            ("b-rank-1".to_owned(), "10.0.0.2:9001".to_owned()),
        ],
        "c is not ready; each endpoint keeps only its own port"
    );
    assert_eq!(
        snapshot.endpoints[0].labels["inference.networking.k8s.io/engine-type"],
        "sglang"
    );
    assert_eq!(snapshot.priority(Some("critical")), 10);
}

#[test]
fn an_empty_file_is_an_empty_pool() {
    let state = parse("", "p").unwrap();
    assert_eq!(state.pool_name, "p");
    assert!(state.pods.is_empty());
    let state = parse("endpoints: []\n", "p").unwrap();
    assert!(state.pods.is_empty());
}

#[test]
fn bad_files_name_the_field() {
    for (text, expect) in [
        (
            "endpoints: [{name: a, address: nowhere}]",
            "endpoints[0].address: `nowhere`",
        ),
        (
            "endpoints: [{name: a, address: 10.0.0.1}]",
            "has no port and the file sets no targetPorts",
        ),
        ("endpoints: [{name: a, address: '10.0.0.1:0'}]", "port 0"),
        (
            "endpoints: [{name: a, address: '10.0.0.1:1'}, {name: a, address: '10.0.0.2:1'}]",
            "endpoints[1].name: `a` is used twice",
        ),
        (
            "endpoints: [{name: '', address: '10.0.0.1:1'}]",
            "endpoints[0].name: empty",
        ),
        ("targetPorts: [0]", "targetPorts: 0"),
        (
            "objectives: [{name: x}, {name: x, priority: 2}]",
            "objectives[1].name: `x` is listed twice",
        ),
        (
            "rewrites: [{name: r, rules: [{targets: []}]}]",
            "rewrites[0] (r).rules[0].targets: empty",
        ),
        (
            "rewrites: [{name: r, rules: [{targets: [{modelRewrite: a, weight: 1}, {modelRewrite: b}]}]}]",
            "set `weight` on every target or on none",
        ),
        (
            "rewrites: [{name: r, rules: [{targets: [{modelRewrite: a, weight: 0}]}]}]",
            "weight: 0 is outside 1-1000000",
        ),
        ("endpoint: []", "endpoint"),
        ("endpoints: {a: 1}", "endpoints"),
        (
            "endpoints: [{name: a, address: '10.0.0.1:1', colour: red}]",
            "colour",
        ),
        ("\u{0}\u{1}: [", ""),
    ] {
        let err = parse(text, "p").unwrap_err();
        assert!(err.contains(expect), "{text}: {err}");
    }
}

fn write(file: &mut tempfile::NamedTempFile, text: &str) {
    let f = file.as_file_mut();
    f.set_len(0).unwrap();
    use std::io::Seek;
    f.seek(std::io::SeekFrom::Start(0)).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f.sync_all().unwrap();
}

#[test]
fn reloads_keep_the_last_good_state() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    write(
        &mut file,
        "endpoints: [{name: a, address: '10.0.0.1:8000'}]\n",
    );
    let mut source =
        StandaloneSource::open(file.path().to_owned(), "p", Duration::from_millis(10)).unwrap();
    assert_eq!(source.current().pods.len(), 1);
    assert!(source.poll_once().unwrap().is_none(), "unchanged");

    // A longer file always changes the stamp, even within one mtime tick.
    write(
        &mut file,
        "endpoints: [{name: a, address: '10.0.0.1:8000'}, {name: b, address: '10.0.0.2:8000'}]\n",
    );
    let grown = source.poll_once().unwrap().unwrap();
    assert_eq!(grown.pods.len(), 2);

    write(
        &mut file,
        "endpoints: [{name: a, address: 'not an address, clearly'}]\n",
    );
    let err = source.poll_once().unwrap_err().to_string();
    assert!(
        err.contains(&file.path().display().to_string()) && err.contains("endpoints[0].address"),
        "{err}"
    );
    assert_eq!(source.current().pods.len(), 2, "the last good state stays");
    assert!(
        source.poll_once().unwrap().is_none(),
        "the same bad file is reported once"
    );

    std::fs::remove_file(file.path()).unwrap();
    let err = source.poll_once().unwrap_err().to_string();
    assert!(err.contains("cannot read"), "{err}");
    assert_eq!(source.current().pods.len(), 2);
}

#[test]
fn a_bad_file_fails_startup() {
    let err = StandaloneSource::open("/nonexistent/pool.yaml".into(), "p", Duration::from_secs(1))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/nonexistent/pool.yaml") && err.contains("cannot read"),
        "{err}"
    );
}

#[tokio::test]
async fn run_publishes_the_first_state_then_changes() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    write(
        &mut file,
        "endpoints: [{name: a, address: '10.0.0.1:8000'}]\n",
    );
    let source =
        StandaloneSource::open(file.path().to_owned(), "p", Duration::from_millis(10)).unwrap();
    let (tx, mut rx) = tokio::sync::watch::channel(Arc::new(PoolState::default()));
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(source.run(tx, stop.clone().cancelled_owned()));
    rx.changed().await.unwrap();
    assert_eq!(rx.borrow_and_update().pods.len(), 1);
    write(
        &mut file,
        "endpoints: []\nobjectives: [{name: x, priority: 1}]\n",
    );
    tokio::time::timeout(Duration::from_secs(5), rx.changed())
        .await
        .unwrap()
        .unwrap();
    assert!(rx.borrow().pods.is_empty());
    stop.cancel();
    task.await.unwrap().unwrap();
}

/// L3: a zero poll interval used to make `tokio::time::interval` panic inside the source
/// task, silently ending reloads; it is now refused at startup naming the flag.
#[test]
fn l3_a_zero_poll_interval_is_refused_naming_the_flag() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    write(&mut file, "endpoints: []\n");
    let Err(err) = StandaloneSource::open(file.path().to_owned(), "p", Duration::ZERO) else {
        panic!("a zero interval must be refused");
    };
    let text = err.to_string();
    assert!(
        text.contains("--endpoints-file-poll-interval") && text.contains("greater than zero"),
        "{text}"
    );
}
