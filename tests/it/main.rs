//! Integration tests of chroma-snap against real ChromaDB servers (see harness.rs).

mod azurite_server;
mod bad_inputs;
mod bench;
mod demo;
mod diff;
mod docs;
mod export;
mod export_faults;
mod export_proxy;
mod from_dir;
mod golden_bytes;
mod harness;
mod help;
mod hostile_files;
mod hostile_verify;
mod layering;
mod load;
mod mutants;
mod mutate;
mod object_export;
mod object_storage;
mod output;
mod output_dirs;
mod proxy;
mod quotas;
mod s3_server;
mod secrets;
mod selective;
mod shard;
mod snapshot_inputs;
mod spec_holes;
mod support;
mod sync;
mod transform;
mod transform_faults;

use harness::{V0, V1, VERSIONS};

#[test]
fn both_servers_answer_heartbeat() {
    for version in VERSIONS {
        let server = harness::shared(version);
        let (status, body) = server.get(&format!("{}/heartbeat", server.api()));
        assert_eq!(status, 200, "{version} heartbeat: {body}\n{}", server.log_tail(20));
        assert!(body.contains("nanosecond heartbeat"), "{version}: {body}");
    }
    // Each generation serves one API only: 1.x answers 410 on v1, 0.4.24 has no v2.
    assert_eq!(harness::shared(V1).get("/api/v1/heartbeat").0, 410);
    assert_eq!(harness::shared(V0).get("/api/v2/heartbeat").0, 404);
    assert!(harness::bin().exists(), "chroma-snap binary at {}", harness::bin().display());
}
