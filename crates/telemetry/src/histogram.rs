//! A latency histogram in the Prometheus text format, with the buckets the
//! gateway and every subgraph share (so one dashboard reads all of them).

use std::fmt::Write;

/// Upper bounds of the latency buckets, in seconds.
pub const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram over [`BUCKETS`].
#[derive(Default, Clone, Debug)]
pub struct Histogram {
    counts: [u64; BUCKETS.len()],
    /// Observations so far.
    pub count: u64,
    sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, seconds: f64) {
        if let Some(i) = BUCKETS.iter().position(|&b| seconds <= b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }

    /// Writes its series named `name` with `labels` (`a="b"`).
    pub fn write(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(self.counts) {
            cumulative += n;
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[cfg(test)]
mod tests {
    use super::Histogram;

    #[test]
    fn buckets_are_cumulative_and_inf_counts_everything() {
        let mut h = Histogram::default();
        for seconds in [0.0001, 0.003, 0.003, 20.0] {
            h.observe(seconds);
        }
        let mut out = String::new();
        h.write(&mut out, "t", "a=\"b\"");
        assert!(out.contains("t_bucket{a=\"b\",le=\"0.0005\"} 1\n"), "{out}");
        assert!(out.contains("t_bucket{a=\"b\",le=\"0.005\"} 3\n"), "{out}");
        assert!(out.contains("t_bucket{a=\"b\",le=\"10\"} 3\n"), "{out}");
        assert!(out.contains("t_bucket{a=\"b\",le=\"+Inf\"} 4\n"), "{out}");
        assert!(out.contains("t_count{a=\"b\"} 4\n"), "{out}");
    }
}
