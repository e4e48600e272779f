//! One profile's pressure gate: which resources are above the profile's
//! thresholds (`[profiles.<name>.pool.pressure]`) now. The pool's refill
//! loop asks every round; while any is over, no zygote of the profile is
//! born, and while memory is over, its idle zygotes beyond `pool.min` are
//! released. Each change (closing, reopening, a different set of
//! resources) is logged once with its inputs.

use tracing::info;
use zygote_config::PoolPressure;

use super::{Readings, Resource, RESOURCES};

/// The gate of one pool.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    over: Vec<Resource>,
}

/// Resources whose `some` pressure ([`super::Stall::some_gate`]) is above
/// its threshold.
pub(crate) fn over(r: &Readings, t: &PoolPressure) -> Vec<Resource> {
    RESOURCES
        .into_iter()
        .filter(|res| r.get(*res).some_gate() > threshold(t, *res))
        .collect()
}

pub(crate) fn threshold(t: &PoolPressure, r: Resource) -> f64 {
    match r {
        Resource::Cpu => t.cpu_some,
        Resource::Memory => t.memory_some,
        Resource::Io => t.io_some,
    }
}

/// `cpu,memory`: resource names joined.
pub(crate) fn names(rs: &[Resource]) -> String {
    rs.iter().map(|r| r.name()).collect::<Vec<_>>().join(",")
}

impl Gate {
    /// Re-evaluates with `r`; returns the resources over their thresholds
    /// (empty: open).
    pub(crate) fn update(&mut self, profile: &str, r: &Readings, t: &PoolPressure) -> &[Resource] {
        let now = over(r, t);
        if now != self.over {
            let inputs =
                |res: Resource| format!("{:.1}% (avg10 {:.1}%)", r.get(res).some_gate(), r.get(res).some_avg10);
            let (cpu, memory, io) = (inputs(Resource::Cpu), inputs(Resource::Memory), inputs(Resource::Io));
            let thresholds = format!("cpu {}%, memory {}%, io {}%", t.cpu_some, t.memory_some, t.io_some);
            if now.is_empty() {
                info!(profile, was = %names(&self.over), cpu, memory, io, thresholds, "pressure gate open: zygote births resume");
            } else {
                info!(profile, over = %names(&now), cpu, memory, io, thresholds, "pressure gate closed: no zygote births");
            }
            self.over = now;
        }
        &self.over
    }

    pub(crate) fn closed(&self) -> bool {
        !self.over.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pressure::Stall;

    fn readings(cpu: f64, memory_recent: f64) -> Readings {
        Readings {
            cpu: Stall {
                some_avg10: cpu,
                ..Stall::default()
            },
            memory: Stall {
                some_recent: memory_recent,
                ..Stall::default()
            },
            io: Stall::default(),
        }
    }

    #[test]
    fn closes_above_and_opens_at_or_below_each_threshold() {
        let t = PoolPressure {
            cpu_some: 40.0,
            memory_some: 10.0,
            io_some: 100.0,
        };
        let mut g = Gate::default();
        assert!(g.update("p", &readings(39.0, 0.0), &t).is_empty());
        assert_eq!(g.update("p", &readings(41.0, 0.0), &t), [Resource::Cpu]);
        assert!(g.closed());
        // The recent share alone closes it (avg10 lags behind).
        assert_eq!(
            g.update("p", &readings(41.0, 12.0), &t),
            [Resource::Cpu, Resource::Memory]
        );
        assert_eq!(g.update("p", &readings(40.0, 12.0), &t), [Resource::Memory]);
        assert!(g.update("p", &readings(0.0, 10.0), &t).is_empty());
        assert!(!g.closed());
        // 100% can never be exceeded: io's gate is off.
        let mut all = readings(0.0, 0.0);
        all.io.some_avg10 = 100.0;
        assert!(over(&all, &t).is_empty());
        assert_eq!(names(&[Resource::Cpu, Resource::Io]), "cpu,io");
    }
}
