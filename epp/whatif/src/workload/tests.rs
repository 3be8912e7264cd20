//! Workload schema and generation.
#![allow(clippy::unwrap_used)]

use super::*;

fn hasher() -> BlockHasher {
    BlockHasher::new(0, 16)
}

#[test]
fn every_built_in_workload_parses() {
    for (name, _) in BUILT_IN {
        let spec = WorkloadSpec::load(name).unwrap();
        assert_eq!(spec.name, name);
        assert_eq!(
            spec.rates.len(),
            6,
            "{name}: six rates in the default report"
        );
    }
}

#[test]
fn unknown_fields_and_bad_values_say_what_to_fix() {
    let base = "name: x\nnum_groups: 1\nnum_prompts_per_group: 1\nquestion_len: 10\noutput_len: 5\nduration_seconds: 1\nrates: [1]\n";
    assert!(WorkloadSpec::from_yaml(base).is_ok());
    let typo = format!("{base}system_promt_len: 5\n");
    let err = WorkloadSpec::from_yaml(&typo).unwrap_err().to_string();
    assert!(err.contains("system_promt_len"), "{err}");
    let err = WorkloadSpec::from_yaml(&base.replace("rates: [1]", "rates: [0]"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("rates"), "{err}");
    let long = format!("{base}system_prompt_len: 50000\n");
    let err = WorkloadSpec::from_yaml(&long).unwrap_err().to_string();
    assert!(err.contains("context"), "{err}");
    let err = WorkloadSpec::load("no-such-workload")
        .unwrap_err()
        .to_string();
    assert!(err.contains("b2b-saas"), "{err}");
}

#[test]
fn b2b_saas_users_repeat_their_prompt_and_groups_share_the_prefix() {
    let spec = WorkloadSpec::load("b2b-saas").unwrap();
    let a = spec.arrivals(10.0, &hasher());
    assert!((550..650).contains(&a.len()), "{}", a.len());
    assert!(a.iter().all(|x| x.prompt_tokens == 7200));
    let first = &a[0];
    let same_group = a.iter().skip(1).find(|x| x.group == first.group).unwrap();
    // 6,000 shared tokens = 375 full blocks.
    assert_eq!(first.block_hashes[..375], same_group.block_hashes[..375]);
    let mean = a.iter().map(|x| f64::from(x.output_tokens)).sum::<f64>() / a.len() as f64;
    assert!((130.0..175.0).contains(&mean), "mean output {mean}");
    // Deterministic: the same arrivals for every policy.
    let b = spec.arrivals(10.0, &hasher());
    assert!(
        a.iter()
            .zip(&b)
            .all(|(x, y)| x.at == y.at && x.block_hashes == y.block_hashes)
    );
}

#[test]
fn multi_turn_prompts_extend_the_last_prompt_and_answer() {
    let spec = WorkloadSpec::load("multi-turn").unwrap();
    let a = spec.arrivals(40.0, &hasher());
    // Find a user's consecutive turns: the later prompt starts with the earlier one.
    let mut extended = 0;
    for (i, x) in a.iter().enumerate() {
        let xt = x.tokens.as_ref().unwrap();
        if let Some(y) = a[i + 1..].iter().find(|y| {
            let yt = y.tokens.as_ref().unwrap();
            y.group == x.group
                && yt.len() > xt.len() + x.output_tokens as usize
                && yt[..xt.len()] == xt[..]
        }) {
            let yt = y.tokens.as_ref().unwrap();
            assert!(yt.len() > xt.len() + x.output_tokens as usize);
            extended += 1;
        }
        if extended > 20 {
            break;
        }
    }
    assert!(extended > 20, "conversations do not grow");
}

#[test]
fn lora_mix_follows_the_shares() {
    let spec = WorkloadSpec::load("lora-mix").unwrap();
    let a = spec.arrivals(50.0, &hasher());
    let count = |name: &str| a.iter().filter(|x| x.lora.as_deref() == Some(name)).count() as f64;
    let n = a.len() as f64;
    assert!((count("tenant-a") / n - 0.12).abs() < 0.03);
    assert!((count("tenant-o") / n - 0.02).abs() < 0.015);
    assert_eq!(a.iter().filter(|x| x.lora.is_none()).count(), 0);
}
