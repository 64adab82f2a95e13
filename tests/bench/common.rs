//! Shared by every benchmark under tests/bench: run two contenders alternately
//! (A B A B ...) in one run, print each median and the ratio. Never fails on speed.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// One contender: a name and a closure that runs one sample and returns how long the
/// measured part took (so set-up between samples can be excluded).
pub struct Contender<'a> {
    pub name: &'a str,
    pub run: Box<dyn FnMut() -> Duration + 'a>,
}

impl<'a> Contender<'a> {
    pub fn new(name: &'a str, run: impl FnMut() -> Duration + 'a) -> Self {
        Contender {
            name,
            run: Box::new(run),
        }
    }

    /// A contender whose whole closure is timed.
    pub fn timed(name: &'a str, mut f: impl FnMut() + 'a) -> Self {
        Contender::new(name, move || {
            let t = Instant::now();
            f();
            t.elapsed()
        })
    }
}

pub fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    let n = samples.len();
    if n == 0 {
        return Duration::ZERO;
    }
    if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2
    }
}

pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((samples.len() - 1) as f64 * p).round() as usize;
    samples[idx.min(samples.len() - 1)]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The result of one A/B comparison.
pub struct AbResult {
    pub case: String,
    pub ours: String,
    pub reference: String,
    pub ours_median: Duration,
    pub reference_median: Duration,
}

impl AbResult {
    /// How many times faster ours is (reference / ours).
    pub fn speedup(&self) -> f64 {
        self.reference_median.as_secs_f64() / self.ours_median.as_secs_f64().max(1e-9)
    }
}

/// Runs `ours` and `reference` alternately `n` times each (after one warm-up of each),
/// prints min/median/max of both and the ratio, and returns the result.
pub fn ab(case: &str, n: usize, mut ours: Contender, mut reference: Contender) -> AbResult {
    (ours.run)();
    (reference.run)();
    let mut a = Vec::with_capacity(n);
    let mut b = Vec::with_capacity(n);
    for _ in 0..n {
        a.push((ours.run)());
        b.push((reference.run)());
    }
    let (amin, amax) = (*a.iter().min().unwrap(), *a.iter().max().unwrap());
    let (bmin, bmax) = (*b.iter().min().unwrap(), *b.iter().max().unwrap());
    let am = median(&mut a);
    let bm = median(&mut b);
    let r = AbResult {
        case: case.to_string(),
        ours: ours.name.to_string(),
        reference: reference.name.to_string(),
        ours_median: am,
        reference_median: bm,
    };
    println!("== {case} (n={n}, alternating A B) ==");
    println!(
        "  A {:<28} min {:>9.3} ms  median {:>9.3} ms  max {:>9.3} ms",
        r.ours,
        ms(amin),
        ms(am),
        ms(amax)
    );
    println!(
        "  B {:<28} min {:>9.3} ms  median {:>9.3} ms  max {:>9.3} ms",
        r.reference,
        ms(bmin),
        ms(bm),
        ms(bmax)
    );
    println!(
        "  ratio B/A = {:.1}x (A is {:.1}x faster)",
        r.speedup(),
        r.speedup()
    );
    r
}

/// Prints a closing summary table of several results.
pub fn summary(results: &[AbResult]) {
    println!("\n== summary ==");
    for r in results {
        println!(
            "  {:<40} {} {:.3} ms vs {} {:.3} ms: {:.1}x",
            r.case,
            r.ours,
            ms(r.ours_median),
            r.reference,
            ms(r.reference_median),
            r.speedup()
        );
    }
}

/// True when running as root; benches that need root print why they skip otherwise.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
