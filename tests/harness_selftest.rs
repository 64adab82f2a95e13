//! The namespace harness works and cleans up after itself, also after a panic.
mod harness;
use harness::*;

#[test]
fn two_hosts_on_a_switch_reach_each_other_and_teardown_removes_everything() {
    let Some(mut lab) = Lab::new("harness_selftest") else {
        return;
    };
    let tag = lab.tag().to_string();
    let (_sw, hosts) = lab.star(&[("a", &["10.213.0.1/24"]), ("b", &["10.213.0.2/24"])]);
    assert!(hosts[0].ping("10.213.0.2", "2"));
    assert_eq!(
        hosts[0].neigh_mac("eth0", "10.213.0.2").as_deref(),
        Some(hosts[1].mac("eth0").as_str())
    );
    let mut bg = hosts[1].spawn(&["sleep", "300"]);
    assert!(!leftover_namespaces(&tag).is_empty());
    drop(lab);
    assert!(
        leftover_namespaces(&tag).is_empty(),
        "namespaces left behind"
    );
    // The background process in the namespace was killed by the teardown.
    let mut exited = None;
    for _ in 0..100 {
        exited = bg.try_wait().expect("try_wait");
        if exited.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(exited.is_some(), "background process survived teardown");
}

#[test]
fn teardown_also_runs_when_a_test_panics() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let tag = std::sync::Mutex::new(String::new());
    let r = std::panic::catch_unwind(|| {
        let mut lab = Lab::new("panicking").unwrap();
        *tag.lock().unwrap() = lab.tag().to_string();
        lab.ns("x");
        panic!("deliberate");
    });
    assert!(r.is_err());
    let tag = tag.into_inner().unwrap();
    assert!(leftover_namespaces(&tag).is_empty());
}
