//! The connection layer under a bounded run of the stateful simulation that the `conn` fuzz
//! target drives without bound (`cargo fuzz run conn`): clients of all three protocols with
//! requests split anywhere, that stop reading or vanish mid-value and mid-reply, while items
//! being sent are overwritten, deleted and evicted. Every reply is checked against the model
//! in `rustcached::server::sim`, and no pin or reservation may outlive its connection.

use rustcached::server::sim;

/// xorshift64*: deterministic scripts, so a failure reproduces.
fn script(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

#[test]
fn random_scripts_keep_every_invariant() {
    for seed in 0..150 {
        let shared = sim::shared();
        let data = script(seed, 1500);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim::run(&shared, &data)));
        assert!(r.is_ok(), "script seed {seed} broke an invariant (see the panic above)");
    }
}

/// The fuzz target runs every script on one server state: what a script leaves behind must not
/// break the next one.
#[test]
fn scripts_in_a_row_on_one_store() {
    let shared = sim::shared();
    for seed in 1000..1100 {
        let data = script(seed, 1500);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim::run(&shared, &data)));
        assert!(r.is_ok(), "script seed {seed} after the ones before it broke an invariant");
    }
}
